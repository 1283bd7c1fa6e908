"""The same run on a Dask cluster, bit-identical to the local one (``pip install ".[dask]"``).

Path ids are split into blocks aligned to ``samples.BLOCK_PATHS``; each task runs the kernel on one
block on a worker and returns mergeable partial results: the integer event counts, the kept rows
(blocks below the kept count only) and, in streaming runs, the block's histogram partials
(``samples.block_histograms``, with the edges fixed by the pilot). The driver merges the blocks in
block order into the same ``engine.RunState`` the local loop fills (counts add, per-block float
sums are folded in block order), so summaries, by-year tables and per-path rows equal the local
run's whatever the number of workers. The pilot blocks (and a block that does not start on a block
boundary, after a resume) return their raw values instead and the driver streams them exactly as
``engine.simulate`` does.

Dask is imported only when this module is used.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from typing import Callable

import numpy as np

from . import engine, kernel
from .config import Config
from .engine import Interrupted, RunState, Simulation, check_invariants
from .model import build_inputs, drawn_parameters
from .samples import BLOCK_PATHS, PILOT_PATHS, block_histograms
from .summary import event_counts, variables

RETRIES = 2          # a failed task is run again (same block, same result)
TASKS_PER_THREAD = 4  # blocks in flight per worker thread: keeps workers busy while the driver merges


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ValueError("running on a Dask cluster needs the dask extra: pip install 'ai-lab-risk-simulator[dask]' "
                         "(or pip install 'dask[distributed]')") from None
    return distributed


@contextlib.contextmanager
def connect(workers: int | None = None, scheduler=None, threads: int | None = None):
    """A ``distributed.Client``: ``scheduler`` itself when it is one, a connection to the scheduler at
    that address, or a new ``LocalCluster`` of ``workers`` processes (closed on exit)."""
    distributed = _import_distributed()
    if scheduler is not None and workers is not None:
        raise ValueError("give either --workers (a local cluster) or --scheduler (an existing one), not both")
    if isinstance(scheduler, distributed.Client):
        yield scheduler
    elif scheduler is not None:
        with distributed.Client(scheduler) as client:
            yield client
    else:
        if workers is None or workers < 1:
            raise ValueError(f"workers = {workers}: expected a positive number of worker processes")
        # One task at a time per process; numba's threads (set per task) share out the cores.
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
            yield client


def local_threads(workers: int) -> int:
    """numba threads per task for ``workers`` processes on this machine."""
    return max(1, (os.cpu_count() or 1) // workers)


_WORKER_CACHE: dict[str, tuple] = {}  # per worker process: config digest -> kernel inputs


def _prepared(config: Config) -> tuple:
    key = config.digest()
    if key not in _WORKER_CACHE:
        inputs = build_inputs(config)
        params = drawn_parameters(config)
        _WORKER_CACHE.clear()
        _WORKER_CACHE[key] = (inputs, params, engine._initial_cash(config, params))
    return _WORKER_CACHE[key]


def simulate_task(config: Config, seed: int, lo: int, hi: int, n_keep: int, mode: str, edges, threads):
    """One block of paths ``lo .. hi - 1`` on a worker: kernel, invariant check, event counts, kept rows,
    and per ``mode``: ``"exact"`` nothing more, ``"raw"`` the summary variables' values,
    ``"binned"`` the block's histogram partials over ``edges``."""
    inputs, params, initial_cash = _prepared(config)
    n = hi - lo
    theta = np.empty((n, len(params)))
    annual = np.empty((n, len(kernel.ANNUAL_VARS), inputs.n_years))
    scalars = np.empty((n, len(kernel.SCALAR_VARS)))
    with engine.thread_count(threads):
        kernel.simulate_block(np.uint64(seed), lo, *inputs.kernel_args(), theta, annual, scalars)
        check_invariants(theta, annual, scalars, initial_cash, lo)
        out = {"counts": event_counts(config, inputs.spy, annual, scalars)}
        if lo < n_keep:
            k = min(hi, n_keep) - lo
            out["rows"] = (theta[:k].copy(), annual[:k].copy(), scalars[:k].copy())
        if mode != "exact":
            values = variables(config, annual, scalars)
            if mode == "raw":
                out["values"] = {name: np.ascontiguousarray(v) for name, v in values.items()}
            else:
                out["hist"] = block_histograms(edges, np.stack(list(values.values())))
    return out


def blocks(start: int, n_paths: int) -> list[tuple[int, int]]:
    """Blocks of path ids from ``start``: cut at every multiple of ``BLOCK_PATHS`` and at ``n_paths``."""
    out, lo = [], start
    while lo < n_paths:
        hi = min(n_paths, (lo // BLOCK_PATHS + 1) * BLOCK_PATHS)
        out.append((lo, hi))
        lo = hi
    return out


def simulate(config: Config, n_paths: int, seed: int, client, *, threads: int | None = None,
             keep_paths: str | int | None = None, progress: Callable[[int], None] | None = None,
             state: RunState | None = None, should_stop: Callable[[], bool] | None = None,
             precise_enough: Callable[[dict[str, int], int], bool] | None = None,
             in_flight: int | None = None) -> Simulation:
    """``engine.simulate`` on the workers of ``client`` (a ``distributed.Client``); same arguments and
    the same, bit-identical result. ``in_flight`` caps the blocks submitted ahead of the merge."""
    state, inputs, params, streaming = engine.prepare(config, n_paths, seed, keep_paths, state)
    n_keep = state.identity["kept"]
    if in_flight is None:
        slots = sum(client.nthreads().values()) or 1
        in_flight = TASKS_PER_THREAD * slots
    pilot_end = min(n_paths, PILOT_PATHS)
    todo = deque(blocks(state.next_id, n_paths))
    if config.simulation.antithetic and state.next_id % 2:
        raise ValueError("cannot resume an antithetic run in the middle of a pair")
    config_future = client.scatter(config, broadcast=True, hash=False)
    edges_future = None
    pending: deque = deque()

    def mode(lo: int) -> str | None:
        """How block ``lo`` reports its histograms; None while it must wait for the pilot's edges."""
        if not streaming:
            return "exact"
        if lo < pilot_end or lo % BLOCK_PATHS:
            return "raw"
        return "binned" if state.acc is not None else None

    def submit() -> None:
        nonlocal edges_future
        while todo and len(pending) < in_flight:
            lo, hi = todo[0]
            how = mode(lo)
            if how is None:
                return  # wait for the pilot to fix the edges
            if how == "binned" and edges_future is None:
                edges_future = client.scatter(state.acc.edges, broadcast=True, hash=False)
            todo.popleft()
            future = client.submit(simulate_task, config_future, seed, lo, hi, n_keep, how,
                                   edges_future if how == "binned" else None, threads,
                                   retries=RETRIES, pure=False)
            pending.append((lo, hi, how, future))

    start_time = time.perf_counter()
    try:
        submit()
        while pending:
            lo, hi, how, future = pending.popleft()
            part = future.result()
            future.release()
            if "rows" in part:
                k = min(hi, n_keep)
                for dst, src in zip((state.theta, state.annual, state.scalars), part["rows"]):
                    dst[lo:k] = src
            for name, v in part["counts"].items():
                state.counts[name] = state.counts.get(name, 0) + v
            if how == "raw":
                engine._stream(state, part["values"], lo, hi, pilot_end)
            elif how == "binned":
                state.acc.merge_block(lo, hi - lo, part["hist"])
            state.next_id = hi
            if progress is not None:
                progress(hi - lo)
            if engine.stop_here(precise_enough, state, hi, n_paths, streaming, pilot_end):
                n_paths = hi
                break
            if should_stop is not None and hi < n_paths and should_stop():
                raise Interrupted(state)
            submit()
    finally:
        for *_, future in pending:
            future.cancel()
    return engine.finish(config, seed, n_paths, inputs, params, state, streaming, time.perf_counter() - start_time)


def describe(client) -> str:
    """The cluster in a few words, for the run's metadata."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    return f"dask {info.get('address', '?')}: {len(workers)} workers, {sum(client.nthreads().values())} threads"
