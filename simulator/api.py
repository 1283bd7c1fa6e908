"""The Python API the CLI uses: load a config, run it, read the results back."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Callable

import numba

from . import __version__
from .config import Config
from .engine import DEFAULT_CHUNK, TRACE_PATHS, Interrupted, RunState, new_state, resolve_keep, simulate, trace_steps
from .kernel import ANNUAL_VARS, SCALAR_VARS
from .model import drawn_parameters
from .results import (RESUME_DIR, SCHEMA_VERSION, Results, ResultsError, prepare_folder, remove_folder_contents,
                      write_results)
from .summary import by_step_frame, by_year_frame, max_rank_error, paths_table, summary_frame

DEFAULT_PATHS = 100_000


class RunInterrupted(ResultsError):
    """The run stopped on request; its progress is saved and ``--resume`` continues it."""


def keep_option(kept: int, n_paths: int) -> str:
    """The --keep-paths value that keeps ``kept`` of ``n_paths`` rows."""
    return "all" if kept == n_paths else "none" if kept == 0 else f"sample:{kept}"


def largest_se(counts: dict[str, int], n: int) -> float:
    """Largest binomial standard error among the probability metrics."""
    return max(math.sqrt(k / n * (1 - k / n) / n) for k in counts.values())


def check_room(out: Path, config: Config, rows: int) -> None:
    """Refuse a run whose kept per-path rows would not fit in memory or on the disk, before starting it."""
    row_bytes = 8 * (len(drawn_parameters(config)) + len(config.years) * len(ANNUAL_VARS) + len(SCALAR_VARS))
    need = rows * row_bytes
    hint = "; keep fewer rows with --keep-paths sample:N or none"
    free = shutil.disk_usage(out).free
    if need > free:
        raise ResultsError(f"{out}: {rows:,} per-path rows need about {need / 2**30:.1f} GiB, "
                           f"only {free / 2**30:.1f} GiB free on that disk{hint}")
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else None
    if memory and 2 * need > memory:
        raise ResultsError(f"{rows:,} per-path rows need about {2 * need / 2**30:.1f} GiB of memory while the run "
                           f"writes them, this machine has {memory / 2**30:.1f} GiB{hint}")


def run(config: Config, n_paths: int = DEFAULT_PATHS, seed: int | None = None, out: str | Path | None = None, *,
        threads: int | None = None, chunk_size: int = DEFAULT_CHUNK, keep_paths: str | int | None = None,
        target_se: float | None = None, force: bool = False, resume: bool = False,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[int], None] | None = None, command: str | None = None,
        workers: int | None = None, scheduler=None) -> Results:
    """Simulate ``n_paths`` paths of ``config`` and summarise them.

    Parameters
    ----------
    config : Config
        From :func:`simulator.load_config`.
    n_paths : int
        Number of paths; path ids are ``0 .. n_paths - 1``.
    seed : int, optional
        Master seed; the config's ``simulation.seed`` when omitted.
    out : path, optional
        Folder to write the Parquet files to (nothing is written when omitted).
    threads, chunk_size : int, optional
        Execution settings; they never change the results.
    target_se : float, optional
        Stop early, at the first multiple of 65,536 paths where the standard error of every
        probability metric is at most this; ``n_paths`` is then the maximum. The result equals a
        run of the path count reached with the same ``keep_paths``.
    resume : bool
        Continue the interrupted run saved in ``out`` (same config, seed, path count, keep_paths);
        the files are bit-identical to an uninterrupted run's.
    should_stop : callable, optional
        Asked after each chunk; when it returns True the run saves its progress in ``out`` and
        raises ``RunInterrupted``.
    keep_paths : str, optional
        Per-path rows to keep: ``"all"``, ``"none"`` or ``"sample:N"`` (the first N path ids);
        default all up to a million paths, else a sample of 100,000. Probabilities are exact either
        way; without every row, quantiles come from histograms with a stated rank error.
    workers, scheduler : optional
        Run on a Dask cluster (the ``dask`` extra): a new local cluster of ``workers`` processes, or
        the scheduler at an address (or a ``distributed.Client``). The results are bit-identical to
        a local run; ``threads`` is then numba's threads per task (see :mod:`simulator.distributed`).

    Returns
    -------
    Results
        ``paths``, ``summary`` and ``by_year`` DataFrames and the run's metadata.
    """
    seed = config.simulation.seed if seed is None else seed
    if chunk_size < 1:
        raise ValueError(f"--chunk-size {chunk_size}: expected a positive number of paths")
    if (resume or should_stop) and out is None:
        raise ValueError("resuming or stopping a run needs an output folder to keep its progress in")
    if out is not None:
        out = Path(out)
        prepare_folder(out, force, resume)
        check_room(out, config, resolve_keep(keep_paths, n_paths))
    state = new_state(config, n_paths, seed, keep_paths)
    if out is not None:
        if resume:
            state = RunState.load(out / RESUME_DIR, state)
            if progress is not None:
                progress(state.next_id)
    started = time.perf_counter()
    if target_se is not None and not target_se > 0:
        raise ValueError(f"--target-se {target_se}: expected a positive standard error")
    precise_enough = None if target_se is None else lambda c, n: largest_se(c, n) <= target_se
    cluster = None
    try:
        if workers is None and scheduler is None:
            sim = simulate(config, n_paths, seed, chunk_size=chunk_size, threads=threads, progress=progress,
                           state=state, should_stop=should_stop, precise_enough=precise_enough)
        else:
            from . import distributed
            if workers is not None and threads is None:
                threads = distributed.local_threads(workers)
            with distributed.connect(workers, scheduler) as client:
                cluster = distributed.describe(client)
                sim = distributed.simulate(config, n_paths, seed, client, threads=threads, progress=progress,
                                           state=state, should_stop=should_stop, precise_enough=precise_enough)
    except Interrupted as stop:
        stop.state.save(out / RESUME_DIR)
        again = (f"{command or 'simulator run CONFIG'} --seed {seed} --paths {n_paths} "
                 f"--keep-paths {keep_option(stop.state.identity['kept'], n_paths)}"
                 + (f" --target-se {target_se}" if target_se is not None else ""))
        raise RunInterrupted(f"interrupted after {stop.state.next_id:,} of {n_paths:,} paths; progress saved in "
                             f"{out / RESUME_DIR}; continue with: {again} --out {out} --resume") from None
    max_paths, n_paths = n_paths, sim.n_paths
    paths = paths_table(sim)
    summary = summary_frame(config, n_paths, sim.counts, sim.samples)
    by_year = by_year_frame(config, sim.samples)
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "simulator_version": __version__,
        "seed": seed,
        "n_paths": n_paths,
        "steps_per_year": config.simulation.steps_per_year,
        "config_name": config.name,
        "config_hash": config.digest(),
        "paths_kept": len(paths),
        "keep_paths": keep_option(len(paths), n_paths),
        "precision": {"target_se": target_se, "max_paths": max_paths if target_se is not None else None,
                      "largest_probability_se": largest_se(sim.counts, n_paths)},
        "quantiles": "exact order statistics" if sim.exact else "streamed histograms",
        "quantile_rank_error_max": max_rank_error(sim.samples),
        "by_step_paths": min(n_paths, TRACE_PATHS),
        "config": config.resolved(),
        "reproduce": f"{command or 'simulator run CONFIG.json'} --seed {seed} --paths {n_paths} "
                     f"--keep-paths {keep_option(len(paths), n_paths)}",
        # Everything under "runtime" describes how the run was executed, never what it computed.
        "runtime": {
            "threads": threads or numba.get_num_threads(),
            "chunk_size": chunk_size,
            "simulate_seconds": round(sim.seconds, 3),
            "total_seconds": round(time.perf_counter() - started, 3),
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()} {platform.python_implementation()} "
                       f"{platform.python_version()}",
            "numba_version": numba.__version__,
            **({"cluster": cluster} if cluster else {}),
        },
    }
    if out is not None:
        try:
            # by_step: per-step quantiles of the first TRACE_PATHS path ids (re-simulated with their trace).
            by_step = by_step_frame(config, config.simulation.steps_per_year,
                                    trace_steps(config, n_paths, seed, threads))
            write_results(out, {"paths": paths, "summary": summary, "by_year": by_year, "by_step": by_step},
                          metadata)
        except BaseException:
            remove_folder_contents(out)
            raise
        shutil.rmtree(out / RESUME_DIR, ignore_errors=True)
    return Results(paths.to_pandas(), summary, by_year, metadata)
