"""The Python API the CLI uses: load a config, run it, read the results back.

A run goes through :func:`prepare` (checks, output folder, state new or resumed) and :func:`execute`
(simulation, files); :func:`run` does both for one run, ``simulator scenarios`` calls them with
several runs, which a Dask cluster then simulates at once.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numba
import pandas as pd
import pyarrow as pa

from .actuals import Actuals, check_effective, command_actuals, figure_report, load_actuals, path_weights
from .built_model import Model
from .config import Config
from .defaults import DEFAULT_CHUNK, DEFAULT_PATHS
from .engine import (
    TRACE_PATHS,
    Interrupted,
    RunState,
    Simulation,
    check_antithetic,
    check_settings,
    check_threads,
    new_state,
    simulate,
    trace_steps,
)
from .errors import SettingsError
from .keep import KeepPaths
from .kernel import ANNUAL_VARS, SCALAR_VARS
from .memory import small_pages
from .results import (
    RESUME_DIR,
    Results,
    ResultsError,
    check_files,
    part_count,
    part_name,
    read_paths,
    run_identity,
    staged_part_name,
    write_parquet,
    write_results,
)
from .run_folder import FolderLock, discard_new, prepare_folder, remove_unfinished
from .samples import BLOCK_PATHS
from .storage import Location, first_line
from .summary import (
    by_step_frame,
    by_year_frame,
    check_paths,
    headline_metrics,
    histogram_frame,
    max_rank_error,
    paths_table,
    summary_frame,
)


class RunInterrupted(ResultsError):
    """The run stopped on request; its progress is saved and ``--resume`` continues it."""


def largest_se(counts: dict[str, int], n: int) -> float:
    """Largest binomial standard error among the probability metrics."""
    return max(math.sqrt(k / n * (1 - k / n) / n) for k in counts.values())


def check_room(out: Location | None, model: Model, rows: int, n_paths: int = 0) -> None:
    """Refuse a run whose kept per-path rows would not fit in memory or on a local disk, before starting it
    (and before its folder is made: the disk is that of its nearest existing parent)."""
    row_bytes = 8 * (len(model.parameters) + len(model.years) * len(ANNUAL_VARS) + len(SCALAR_VARS))
    need = rows * row_bytes
    hint = "; keep fewer rows with --keep-paths sample:N or none"
    free = math.inf
    if out is not None and out.local is not None:
        where = out.local.absolute()
        while not where.exists() and where != where.parent:
            where = where.parent
        usage = shutil.disk_usage(where) if where.is_dir() else None
        if usage is not None and usage.total > 0:  # a pseudo file system (/proc) has no size: writing there fails
            free = usage.free
    if need > free:
        raise ResultsError(f"{out}: {rows:,} per-path rows need about {need / 2**30:.1f} GiB, "
                           f"only {free / 2**30:.1f} GiB free on that disk{hint}")
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else None
    if model.actuals is not None and memory:
        # A posterior run holds every path's summary values, log-likelihoods and event flags (engine.new_state),
        # and sorts a copy of each variable's values with their weights.
        per_path = 8 * (len(model.variables) + len(model.actuals.figures) + 4) + len(model.events)
        if 2 * n_paths * per_path > memory:
            raise ResultsError(f"{n_paths:,} paths of a run with --actuals need about "
                               f"{2 * n_paths * per_path / 2**30:.1f} GiB of memory (every path's summary values), "
                               f"this machine has {memory / 2**30:.1f} GiB; run fewer paths")
    if memory and 2 * need > memory:
        raise ResultsError(f"{rows:,} per-path rows need about {2 * need / 2**30:.1f} GiB of memory while the run "
                           f"writes them, this machine has {memory / 2**30:.1f} GiB{hint}")


def run(config: Config, n_paths: int = DEFAULT_PATHS, seed: int | None = None, out: str | Path | None = None, *,
        threads: int | None = None, chunk_size: int = DEFAULT_CHUNK, keep_paths: KeepPaths | str | int | None = None,
        target_se: float | None = None, force: bool = False, resume: bool = False,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[int], None] | None = None, command: str | None = None,
        workers: int | None = None, scheduler=None, actuals: Actuals | str | Path | None = None,
        note: Callable[[str], None] | None = None) -> Results:
    """Simulate ``n_paths`` paths of ``config`` and summarise them.

    Parameters
    ----------
    config : Config
        From :func:`simulator.load_config`.
    n_paths : int
        Number of paths; path ids are ``0 .. n_paths - 1``.
    seed : int, optional
        Master seed; the config's ``simulation.seed`` when omitted.
    out : path or URL, optional
        Folder to write the Parquet files to (nothing is written when omitted): a local path, or a
        URL of any file system fsspec knows (``s3://bucket/run``, ``file:///data/run``, ...).
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
    keep_paths : KeepPaths or str, optional
        Per-path rows to keep: ``"all"``, ``"none"`` or ``"sample:N"`` (the first N path ids), or a
        :class:`simulator.keep.KeepPaths`;
        default all up to a million paths, else a sample of 100,000. Probabilities are exact either
        way; without every row, quantiles come from histograms with a stated rank error.
    workers, scheduler : optional
        Run on a Dask cluster (the ``dask`` extra): a new local cluster of ``workers`` processes, or
        the scheduler at an address (or a ``distributed.Client``). The results are bit-identical to
        a local run; ``threads`` is then numba's threads per task (see :mod:`simulator.distributed`).
        The tasks write the per-path rows to ``out`` themselves: every worker must reach it.
    actuals : Actuals or path, optional
        Reported figures (an actuals file, :func:`simulator.actuals.load_actuals`): every path is weighted by
        their likelihood and every summary is weighted, its standard error that of the effective sample size
        (the ``ess`` metric). Such a run keeps every path's summary values (exact weighted order statistics).
    note : callable, optional
        Told, in one line, what the run did to ``out`` beyond writing its results (it removed what an
        unfinished run had left there).

    Returns
    -------
    Results
        ``paths``, ``summary`` and ``by_year`` DataFrames and the run's metadata.
    """
    check_cluster(workers, scheduler)
    prepared = prepare(config, n_paths, seed, out, threads=threads, chunk_size=chunk_size, keep_paths=keep_paths,
                       target_se=target_se, force=force, resume=resume, should_stop=should_stop, progress=progress,
                       command=command, actuals=actuals, note=note)
    return execute([prepared], workers, scheduler)[0]


def check_cluster(workers: int | None, scheduler) -> None:
    """Refuse cluster options that cannot work (no dask installed, both a new and an existing cluster) before
    any folder is made."""
    if workers is None and scheduler is None:
        return
    from . import distributed  # the module itself imports dask only when used

    distributed.check_options(workers, scheduler)


@dataclass
class PreparedRun:
    """A run checked and set up by :func:`prepare`, for :func:`execute`."""

    model: Model
    n_paths: int
    seed: int
    out: Location | None
    state: RunState
    threads: int | None
    chunk_size: int
    target_se: float | None
    should_stop: Callable[[], bool] | None
    progress: Callable[[int], None] | None
    command: str | None
    started: float
    lock: FolderLock | None = None  # held on ``out`` until the run has ended

    def precise_enough(self, counts: dict[str, int], n: int) -> bool:
        assert self.target_se is not None  # options() hands this to the engines only with a target
        return largest_se(counts, n) <= self.target_se

    def options(self) -> dict:
        """The engines' arguments for this run."""
        return {"threads": self.threads, "progress": self.progress, "state": self.state,
                "should_stop": self.should_stop,
                "precise_enough": self.precise_enough if self.target_se is not None else None}


def prepare(config: Config, n_paths: int = DEFAULT_PATHS, seed: int | None = None,
            out: str | Path | Location | None = None, *,
            threads: int | None = None, chunk_size: int = DEFAULT_CHUNK,
            keep_paths: KeepPaths | str | int | None = None,
            target_se: float | None = None, force: bool = False, resume: bool = False,
            should_stop: Callable[[], bool] | None = None, progress: Callable[[int], None] | None = None,
            command: str | None = None, actuals: Actuals | str | Path | None = None,
            note: Callable[[str], None] | None = None) -> PreparedRun:
    """Check a run's settings and output folder and set up its state (new, or resumed from ``out``);
    nothing is simulated yet. The arguments are :func:`run`'s."""
    started = time.perf_counter()
    seed = config.simulation.seed if seed is None else seed
    # Every setting is checked before the output folder is touched: a rejected command leaves nothing behind.
    if chunk_size < 1:
        raise SettingsError(f"--chunk-size {chunk_size}: expected a positive number of paths")
    if (resume or should_stop) and out is None:
        raise SettingsError("resuming or stopping a run needs an output folder to keep its progress in")
    if target_se is not None and not target_se > 0:
        raise SettingsError(f"--target-se {target_se}: expected a positive standard error")
    keep_paths = KeepPaths.parse(keep_paths)
    n_keep = check_settings(n_paths, seed, keep_paths)
    check_threads(threads)
    check_antithetic(config, n_paths, n_keep < n_paths)
    check_paths(config, n_paths)  # enough paths for the summaries' standard errors
    if actuals is not None and not isinstance(actuals, Actuals):
        actuals = load_actuals(actuals)
    if actuals is not None and actuals.figures and config.simulation.antithetic:
        raise SettingsError("--actuals: an antithetic run cannot be weighted (its standard errors come from the "
                            "pairs); set simulation.antithetic = false")
    model = Model.of(config, actuals)
    check_room(None if out is None else Location(out), model, n_keep, n_paths)
    folder: Location | None = None
    lock = None
    if out is not None:
        folder, lock = prepare_folder(out, force, resume, note)
    try:
        state = new_state(model, n_paths, seed, keep_paths)
        if resume:
            assert folder is not None  # a resume without an output folder was refused above
            state = RunState.load(folder / RESUME_DIR, state)
            # Parts written before the interruption are kept: they must still be there, unchanged.
            check_files(folder, {staged_part_name(i): entry for i, entry in state.parts.items()},
                        source="the saved progress")
    except BaseException:
        if lock is not None and folder is not None:
            lock.release()
            discard_new(folder, lock)
        raise
    if resume and progress is not None:
        progress(state.next_id)
    return PreparedRun(model, n_paths, seed, folder, state, threads, chunk_size, target_se, should_stop, progress,
                       command, started, lock)


def execute(runs: list[PreparedRun], workers: int | None = None, scheduler=None) -> list[Results]:
    """Simulate prepared runs and write their files: here one after the other, or on one Dask cluster (a new
    local one of ``workers`` processes, or ``scheduler``: see :func:`run`) all at once, each run merged in its
    own block order, so each result equals that run's alone."""
    failed = True
    try:
        with small_pages():
            results = _execute(runs, workers, scheduler)
        failed = False
        return results
    finally:
        release(runs, failed)


def release(runs: list[PreparedRun], failed: bool = False) -> None:
    """Release the runs' folder locks (each run's end, or a failure before it started); after a failure, remove
    the folders made for runs that left nothing to keep (no results, no progress to resume)."""
    for r in runs:
        if r.lock is not None:
            r.lock.release()
            if failed and r.out is not None:
                discard_new(r.out, r.lock)


def _execute(runs: list[PreparedRun], workers: int | None, scheduler) -> list[Results]:
    try:
        if workers is None and scheduler is None:
            return [_finish(r, simulate(r.model, r.n_paths, r.seed, chunk_size=r.chunk_size, **r.options()))
                    for r in runs]
        from . import distributed
        with distributed.connect(workers, scheduler) as client:
            cluster = distributed.describe(client)
            jobs = []
            for r in runs:
                if workers is not None and r.threads is None:
                    r.threads = distributed.local_threads(workers)
                jobs.append(distributed.Job(client, r.model, r.n_paths, r.seed, out=r.out, **r.options()))
            sims = distributed.run_jobs(client, jobs)
        return [_finish(r, sim, cluster) for r, sim in zip(runs, sims)]
    except Interrupted as stop:
        r = next(r for r in runs if r.state is stop.state)
        assert r.out is not None  # only a run with an output folder can be stopped (prepare checks)
        try:
            stop.state.save(r.out / RESUME_DIR)
        except OSError as e:
            raise ResultsError(f"{r.out / RESUME_DIR}: interrupted after {stop.state.next_id:,} of {r.n_paths:,} "
                               f"paths, and the progress could not be saved ({first_line(e)})") from None
        again = (f"{r.command or 'simulator run CONFIG'} --seed {r.seed} --paths {r.n_paths} "
                 f"--keep-paths {KeepPaths.option(stop.state.identity['kept'], r.n_paths)}"
                 + (f" --target-se {r.target_se}" if r.target_se is not None else ""))
        raise RunInterrupted(f"interrupted after {stop.state.next_id:,} of {r.n_paths:,} paths; progress saved in "
                             f"{r.out / RESUME_DIR}; continue with: {again} --out {r.out} --resume") from None


def update_record(model: Model, sim: Simulation, steps, weights) -> dict:
    """What a posterior run's metadata records of its update: each reported figure (``figures``: see
    :func:`simulator.actuals.figure_report`, with its bands on the by_step paths ``steps`` of ``weights``) and the
    headline figures of the prior (``prior``: metric -> [value, stderr, ci_low, ci_high]) from the same paths
    unweighted."""
    assert model.actuals is not None and sim.loglik is not None  # a posterior run's
    config = model.config
    values, _ = model.actuals.simulated(steps, config.simulation.start_year, model.steps_per_year)
    figures = figure_report(model.actuals, sim.loglik, values, weights)
    prior = summary_frame(config, sim.n_paths, sim.counts, {k: s.unweighted() for k, s in sim.samples.items()})
    rows = prior.set_index("metric").loc[headline_metrics(config)]
    return {"figures": figures,
            "prior": {name: [float(x) if math.isfinite(x) else None for x in row]  # JSON has no NaN
                      for name, row in zip(rows.index, rows.to_numpy())}}


def _finish(run: PreparedRun, sim: Simulation, cluster: str | None = None) -> Results:
    """Summaries, metadata and files of a simulated run."""
    model, seed, out = run.model, run.seed, run.out
    config = model.config
    max_paths, n_paths, n_kept = run.n_paths, sim.n_paths, len(sim.scalars)
    weights = sim.weights
    # A posterior run's by_step paths and their weights, traced now: its record of the update reads them.
    traced = traced_weights = None
    if model.actuals is not None:
        assert sim.loglik is not None and weights is not None  # a posterior run's paths bring both
        check_effective(model.actuals, sim.loglik, weights)
        traced = trace_steps(model, n_paths, seed, run.threads)
        traced_weights = path_weights(model.log_likelihoods(traced))
    summary = summary_frame(config, n_paths, sim.counts, sim.samples, weights, sim.flags)
    by_year = by_year_frame(config, sim.samples)
    metadata = {
        **run_identity(config, seed, model.actuals),
        "n_paths": n_paths,
        "paths_kept": n_kept,
        "keep_paths": KeepPaths.option(n_kept, n_paths),
        "precision": {"target_se": run.target_se, "max_paths": max_paths if run.target_se is not None else None,
                      "largest_probability_se": largest_se(sim.counts, n_paths)},
        "quantiles": "exact order statistics" if sim.exact else "streamed histograms",
        "quantile_rank_error_max": max_rank_error(sim.samples),
        "by_step_paths": min(n_paths, TRACE_PATHS),
        **(update_record(model, sim, traced, traced_weights) if traced is not None else {}),
        "reproduce": f"{run.command or 'simulator run config.json'} --seed {seed} --paths {n_paths} "
                     f"--keep-paths {KeepPaths.option(n_kept, n_paths)}"
                     + (f" --actuals {shlex.quote(command_actuals(model.actuals.name))}" if model.actuals is not None
                        else ""),
        # Everything under "runtime" describes how the run was executed, never what it computed.
        "runtime": {
            "threads": run.threads or numba.get_num_threads(),
            "chunk_size": run.chunk_size,
            "simulate_seconds": round(sim.seconds, 3),
            "total_seconds": round(time.perf_counter() - run.started, 3),
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()} {platform.python_implementation()} "
                       f"{platform.python_version()}",
            "numba_version": numba.__version__,
            **({"cluster": cluster} if cluster else {}),
        },
    }
    # The parts this process writes: from the rows it holds (every block but those the tasks wrote), one
    # table at a time; as one DataFrame only when the Results' paths are read.
    local = [index for index in range(part_count(n_kept)) if index not in sim.parts]

    def part_table(index: int) -> pa.Table:
        rows = slice(index * BLOCK_PATHS, min(n_kept, (index + 1) * BLOCK_PATHS))
        return paths_table(model, sim.theta[rows], sim.annual[rows], sim.scalars[rows],
                           first_id=rows.start, weights=None if weights is None else weights[rows])

    def local_paths() -> pd.DataFrame:
        return pa.concat_tables([part_table(index) for index in local]).to_pandas()

    def step_table() -> pa.Table:  # per-step quantiles of the first TRACE_PATHS path ids, re-simulated with a trace
        steps = traced if traced is not None else trace_steps(model, n_paths, seed, run.threads)
        return by_step_frame(config, config.simulation.steps_per_year, steps, traced_weights)

    if out is None:
        return Results(local_paths, summary, by_year, metadata, lambda: step_table().to_pandas())
    try:
        identity = run_identity(config, seed, model.actuals)
        parts = {part_name(i): write_parquet(out / staged_part_name(i), part_table(i), identity) for i in local}
        parts.update({part_name(i): entry for i, entry in sim.parts.items()})
        by_step = step_table()
        tables = {"summary": summary, "by_year": by_year, "by_step": by_step,
                  "histograms": histogram_frame(config, sim.samples)}  # the report's FCF and funding-gap charts
        write_results(out, tables, metadata, parts)
    except BaseException:
        remove_unfinished(out)
        raise
    (out / RESUME_DIR).remove_tree()
    # Parts the tasks wrote are read back now; the others are still at hand.
    return Results(read_paths(out, verify=False) if sim.parts else local_paths, summary, by_year, metadata,
                   by_step.to_pandas)
