"""Monte Carlo risk simulator for the finances of a frontier AI lab.

>>> import simulator
>>> cfg = simulator.load_config()                      # the packaged base config
>>> res = simulator.run(cfg, n_paths=100_000, seed=1)  # or out="results/x" to write Parquet
>>> res.metric("p_fcf_positive_2030")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.5.0.dev0"

# The API's names and the module of each, imported on first use (PEP 562): every command imports this package,
# and `simulator --version` or `validate` must not wait for numba, pandas and scipy (~1.5 s) to load.
_API = {"run": "api", "ConfigError": "config", "load_config": "config", "SimulatorError": "errors",
        "Results": "results", "ResultsError": "results", "read_results": "results"}

if TYPE_CHECKING:
    from .api import run
    from .config import ConfigError, load_config
    from .errors import SimulatorError
    from .results import Results, ResultsError, read_results

__all__ = ["ConfigError", "Results", "ResultsError", "SimulatorError", "load_config", "read_results", "run",
           "__version__"]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
