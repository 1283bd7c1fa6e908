"""Running the kernel over many paths: chunks, threads, progress, and what is kept.

Memory is bounded by the chunk size, the per-path rows the user keeps, and the summaries'
fixed-size histograms: it does not grow with the path count otherwise.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from . import kernel
from .config import Config
from .model import ModelInputs, build_inputs, drawn_parameters
from .samples import PILOT_PATHS, Accumulator, SortedSample, pilot_edges
from .summary import event_counts, variables

DEFAULT_CHUNK = 1 << 16
KEEP_ALL_UP_TO = 1_000_000
DEFAULT_SAMPLE = 100_000


@dataclass
class Simulation:
    """What a run collected: the kept per-path rows (path ids 0 .. kept - 1), event counts, samples."""

    config: Config
    seed: int
    n_paths: int
    inputs: ModelInputs
    params: list[str]       # names of the columns of ``theta``
    theta: np.ndarray       # (kept, n_drawn) drawn parameters
    annual: np.ndarray      # (kept, len(kernel.ANNUAL_VARS), n_years)
    scalars: np.ndarray     # (kept, len(kernel.SCALAR_VARS))
    counts: dict[str, int]  # paths meeting each probability metric's event
    samples: dict = field(repr=False)  # summary variable -> SortedSample or HistogramSample
    seconds: float = 0.0

    @property
    def exact(self) -> bool:
        """Whether every path was kept, so quantiles are exact order statistics."""
        return len(self.scalars) == self.n_paths


def resolve_keep(keep: str | int | None, n_paths: int) -> int:
    """Number of per-path rows to keep: ``"all"``, ``"none"``, ``"sample:N"`` (the first N path ids)
    or ``None`` (all up to a million paths, else a sample of 100,000)."""
    if keep is None:
        return n_paths if n_paths <= KEEP_ALL_UP_TO else DEFAULT_SAMPLE
    if isinstance(keep, int):
        count = keep
    elif keep == "all":
        return n_paths
    elif keep == "none":
        return 0
    elif isinstance(keep, str) and keep.startswith("sample:") and keep[7:].isdigit():
        count = int(keep[7:])
    else:
        raise ValueError(f"keep_paths = {keep!r}: expected all, none or sample:N")
    return min(count, n_paths)


@contextlib.contextmanager
def thread_count(threads: int | None):
    """Run numba's parallel loops on ``threads`` threads inside the block."""
    if threads is None:
        yield
        return
    if not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads = {threads}: expected 1..{numba.config.NUMBA_NUM_THREADS} on this machine")
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def simulate(config: Config, n_paths: int, seed: int, *, chunk_size: int = DEFAULT_CHUNK,
             threads: int | None = None, keep_paths: str | int | None = None,
             progress: Callable[[int], None] | None = None) -> Simulation:
    """Simulate paths ``0 .. n_paths - 1`` chunk by chunk.

    With every row kept, summaries use exact order statistics. Otherwise each chunk feeds integer
    event counts and streamed histograms (bin edges from the first ``PILOT_PATHS`` paths), and
    only the first ``keep`` rows stay in memory. Either way the results do not depend on
    ``chunk_size`` or ``threads``. ``progress(k)`` is called with the paths finished per chunk.
    """
    if n_paths < 1:
        raise ValueError(f"n_paths = {n_paths}: expected a positive number of paths")
    if chunk_size < 1:
        raise ValueError(f"chunk_size = {chunk_size}: expected a positive number of paths")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed = {seed}: expected an integer in [0, 2**63)")
    n_keep = resolve_keep(keep_paths, n_paths)
    inputs = build_inputs(config)
    params = drawn_parameters(config)
    n_years = inputs.n_years
    kept = (np.empty((n_keep, len(params))), np.empty((n_keep, len(kernel.ANNUAL_VARS), n_years)),
            np.empty((n_keep, len(kernel.SCALAR_VARS))))
    streaming = n_keep < n_paths
    width = min(chunk_size, n_paths)
    buffers = (np.empty((width, len(params))), np.empty((width, len(kernel.ANNUAL_VARS), n_years)),
               np.empty((width, len(kernel.SCALAR_VARS))))
    counts: dict[str, int] = {}
    pilot_end = min(n_paths, PILOT_PATHS)
    pilot: list[np.ndarray] = []
    acc: Accumulator | None = None
    names: list[str] = []
    args = inputs.kernel_args()
    start_time = time.perf_counter()
    with thread_count(threads):
        for lo in range(0, n_paths, chunk_size):
            hi = min(lo + chunk_size, n_paths)
            theta, annual, scalars = (b[:hi - lo] for b in buffers)
            kernel.simulate_block(np.uint64(seed), lo, *args, theta, annual, scalars)
            if lo < n_keep:
                for dst, src in zip(kept, (theta, annual, scalars)):
                    dst[lo:min(hi, n_keep)] = src[:min(hi, n_keep) - lo]
            for k, v in event_counts(config, inputs.spy, annual, scalars).items():
                counts[k] = counts.get(k, 0) + v
            if streaming:
                values = variables(config, annual, scalars)
                names = list(values)
                matrix = np.stack(list(values.values()))  # (variables, paths): rows contiguous for binning
                if acc is None:
                    pilot.append(matrix[:, :pilot_end - lo])
                    if hi >= pilot_end:
                        pilot_matrix = np.concatenate(pilot, axis=1)
                        acc = Accumulator(names, pilot_edges(pilot_matrix))
                        acc.add(pilot_matrix, 0)
                        pilot = []
                        if hi > pilot_end:
                            acc.add(matrix[:, pilot_end - lo:], pilot_end)
                else:
                    acc.add(matrix, lo)
            if progress is not None:
                progress(hi - lo)
    if streaming:
        samples = acc.finish()
    else:
        samples = {k: SortedSample(v) for k, v in variables(config, kept[1], kept[2]).items()}
    return Simulation(config, seed, n_paths, inputs, params, *kept, counts, samples,
                      time.perf_counter() - start_time)
