"""The defaults the command line shows in its help, in a module that imports nothing: ``simulator --help`` and
``--version`` then start without numba, pandas or scipy. The modules that use them import them from here."""

from __future__ import annotations

from pathlib import Path

DEFAULT_PATHS = 100_000  # paths of a run (simulator.api)
# Paths of a run with --actuals (the command line's default): its paths are weighted. Base given
# configs/actuals/2026h1.toml keeps ~70% of them effective (~40% had its source been of high confidence): 200,000
# give over 100,000.
POSTERIOR_PATHS = 200_000
DEFAULT_CHUNK = 1 << 16  # paths a kernel call simulates (simulator.engine)
DEFAULT_OUT = Path("results") / "scenarios"  # where `simulator scenarios` writes (simulator.scenarios)
OUTCOMES = ("shortfall", "fcf_negative")  # the outcomes PRIM can explain (simulator.analysis)
