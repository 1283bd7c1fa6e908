"""Running the kernel over many paths: chunks, threads, progress."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np

from . import kernel
from .config import Config
from .model import ModelInputs, build_inputs, drawn_parameters

DEFAULT_CHUNK = 1 << 16


@dataclass
class Simulation:
    """Raw per-path outputs of a run, rows in path-id order."""

    config: Config
    seed: int
    inputs: ModelInputs
    params: list[str]       # names of the columns of ``theta``
    theta: np.ndarray       # (n, n_drawn) drawn parameters
    annual: np.ndarray      # (n, len(kernel.ANNUAL_VARS), n_years)
    scalars: np.ndarray     # (n, len(kernel.SCALAR_VARS))
    seconds: float

    @property
    def n_paths(self) -> int:
        return self.theta.shape[0]

    def annual_var(self, name: str) -> np.ndarray:
        return self.annual[:, kernel.ANNUAL_VARS.index(name), :]

    def scalar(self, name: str) -> np.ndarray:
        return self.scalars[:, kernel.SCALAR_VARS.index(name)]


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
             threads: int | None = None, progress: Callable[[int], None] | None = None) -> Simulation:
    """Simulate paths ``0 .. n_paths - 1``.

    The kernel runs chunk by chunk, writing straight into the result arrays, so the only memory
    that grows with ``n_paths`` is the per-path rows themselves.  ``progress(k)`` is called with
    the number of paths finished in each chunk.
    """
    if n_paths < 1:
        raise ValueError(f"n_paths = {n_paths}: expected a positive number of paths")
    if chunk_size < 1:
        raise ValueError(f"chunk_size = {chunk_size}: expected a positive number of paths")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed = {seed}: expected an integer in [0, 2**63)")
    inputs = build_inputs(config)
    params = drawn_parameters(config)
    theta = np.empty((n_paths, len(params)))
    annual = np.empty((n_paths, len(kernel.ANNUAL_VARS), inputs.n_years))
    scalars = np.empty((n_paths, len(kernel.SCALAR_VARS)))
    args = inputs.kernel_args()
    start_time = time.perf_counter()
    with thread_count(threads):
        for lo in range(0, n_paths, chunk_size):
            hi = min(lo + chunk_size, n_paths)
            kernel.simulate_block(np.uint64(seed), lo, *args, theta[lo:hi], annual[lo:hi], scalars[lo:hi])
            if progress is not None:
                progress(hi - lo)
    return Simulation(config, seed, inputs, params, theta, annual, scalars, time.perf_counter() - start_time)
