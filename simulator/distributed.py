"""The same runs on a Dask cluster, bit-identical to local ones (``pip install ".[dask]"``).

Path ids are split into blocks aligned to ``samples.BLOCK_PATHS``; each task runs the kernel on one
block on a worker and returns mergeable partial results: the integer event counts and either the
block's summary values (runs that keep every row, and the pilot) or its histogram partials
(``samples.block_histograms``, with the edges fixed by the pilot). A task whose block holds kept rows
writes them itself as the block's part of the ``paths/`` dataset in the output location (which every
worker must reach), with the same function a local run uses, so the part has the same bytes; a
retried task writes the same bytes again. The config and the histograms' edges are scattered to the
workers; a task cancelled because the workers holding them died is submitted again with them scattered
anew. The driver merges each run's blocks in block order into
the same ``engine.RunState`` the local loop fills (counts add, per-block float sums are folded in
block order), so summaries and by-year tables equal the local run's whatever the number of workers.

Rows come back to the driver instead, for it to write, when there is no output location, when a
block does not start on a block boundary (after a resume) and so is only part of its part, and in a
run that keeps every row and may stop early (its kept count is only known at the end).

:func:`run_jobs` drives several runs over one client at once (``simulator scenarios``): their blocks
are submitted in turn and each run merges its own, in its block order.

Dask is imported only when this module is used.

Trust: a Dask scheduler and its workers run the code they are sent (tasks travel as pickles), and the
driver unpickles what comes back. Connect only to a scheduler you trust, on a network where no one
else can reach it, or over TLS (``tls://`` addresses) with certificates: :class:`Scheduler`'s
``security``, a YAML or JSON file of ``distributed.Security`` settings (``--scheduler-security``), or
else Dask's own configuration (``distributed.comm.tls.*``), which a client reads by itself.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections import deque
from concurrent.futures import CancelledError
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import engine, kernel
from .actuals import path_weights
from .built_model import Model
from .config import Config
from .engine import RunState, Simulation
from .errors import SettingsError
from .keep import KeepPaths
from .results import run_identity, staged_part_name, write_parquet
from .samples import BLOCK_PATHS, block_histograms
from .storage import Location, first_line
from .summary import paths_table

RETRIES = 2          # a failed task is run again (same block, same result)
TASKS_PER_THREAD = 4  # blocks in flight per worker thread: keeps workers busy while the driver merges

# The histograms' edges, axes and with_sums that a block's partials are binned with (samples.block_histograms).
Bins = tuple[np.ndarray, np.ndarray, np.ndarray]


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise SettingsError("running on a Dask cluster needs the dask extra: pip install 'ai-lab-risk-simulator[dask]' "
                            "(or pip install 'dask[distributed]')") from None
    return distributed


def check_options(workers: int | None, scheduler) -> None:
    """The cluster options' own errors (dask missing, both options given), before a run makes its folder."""
    _import_distributed()
    if scheduler is not None and workers is not None:
        raise SettingsError("give either --workers (a local cluster) or --scheduler (an existing one), not both")


CONNECT_TIMEOUT = 10  # seconds: an unreachable scheduler is reported this soon (Dask's default is 30 s)
# Settings of distributed.Security a client uses; the scheduler's and workers' own keys are theirs to set.
CLIENT_SECURITY = ("require_encryption", "tls_ca_file", "tls_client_cert", "tls_client_key", "tls_ciphers",
                   "tls_min_version", "tls_max_version")
SECURITY_FILES = ("tls_ca_file", "tls_client_cert", "tls_client_key")


@dataclass(frozen=True)
class Scheduler:
    """The address of a Dask scheduler, and how to reach it: ``security`` is a YAML or JSON file of
    ``distributed.Security`` settings (see :func:`load_security`); None: Dask's configuration."""

    address: str
    security: str | Path | None = None


def load_security(path: str | Path) -> dict:
    """The ``distributed.Security`` settings in the YAML (or JSON) file at ``path``: a mapping of
    ``CLIENT_SECURITY`` keys, e.g. ``tls_ca_file``, ``tls_client_cert``, ``tls_client_key`` and
    ``require_encryption: true``. Relative file names are relative to the file's folder."""
    import yaml  # a dependency of dask

    path = Path(path)
    try:
        settings = yaml.safe_load(path.read_text())
    except OSError as e:
        raise SettingsError(f"--scheduler-security {path}: cannot read it ({first_line(e)})") from None
    except yaml.YAMLError as e:
        raise SettingsError(f"--scheduler-security {path}: not valid YAML or JSON ({first_line(e)})") from None
    if not isinstance(settings, dict):
        raise SettingsError(f"--scheduler-security {path}: holds {type(settings).__name__} {settings!r:.40}, expected "
                            f"a mapping of distributed.Security settings ({', '.join(CLIENT_SECURITY)})")
    for key, value in settings.items():
        if key not in CLIENT_SECURITY:
            raise SettingsError(f"--scheduler-security {path}: {key}: unknown key (expected one of: "
                                f"{', '.join(CLIENT_SECURITY)})")
        if key == "require_encryption" and not isinstance(value, bool):
            raise SettingsError(f"--scheduler-security {path}: require_encryption = {value!r}: expected true or false")
        if key != "require_encryption" and not isinstance(value, str):
            raise SettingsError(f"--scheduler-security {path}: {key} = {value!r}: expected a string")
        # A certificate or key may be given as a file name or as its PEM text (as distributed.Security takes it).
        if key in SECURITY_FILES and "-----BEGIN" not in value:
            file = (path.parent / value).expanduser()
            if not file.is_file():
                raise SettingsError(f"--scheduler-security {path}: {key} = {value!r}: no such file {file}")
            settings[key] = str(file)
    return settings


def open_client(scheduler: str | Scheduler, timeout: float = CONNECT_TIMEOUT):
    """A ``distributed.Client`` connected to ``scheduler`` (an address or a :class:`Scheduler`); an error of one
    line when it cannot be reached within ``timeout`` seconds or refuses the connection."""
    distributed = _import_distributed()
    if not isinstance(scheduler, Scheduler):
        scheduler = Scheduler(str(scheduler))
    # security=None: distributed.Security() from Dask's configuration (distributed.comm.tls.*).
    security = distributed.Security(**load_security(scheduler.security)) if scheduler.security is not None else None
    try:
        return distributed.Client(scheduler.address, timeout=timeout, security=security)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        # Dask says "Timed out trying to connect ...", or why the address or TLS settings do not work.
        raise SettingsError(f"--scheduler {scheduler.address}: cannot connect to the Dask scheduler "
                            f"({first_line(e)})") from None


@contextlib.contextmanager
def connect(workers: int | None = None, scheduler=None, threads: int | None = None):
    """A ``distributed.Client``: ``scheduler`` itself when it is one, a connection to the scheduler at
    that address (a string or a :class:`Scheduler`), or a new ``LocalCluster`` of ``workers`` processes
    (closed on exit)."""
    distributed = _import_distributed()
    if scheduler is not None and workers is not None:
        raise SettingsError("give either --workers (a local cluster) or --scheduler (an existing one), not both")
    if isinstance(scheduler, distributed.Client):
        yield scheduler
    elif scheduler is not None:
        with open_client(scheduler) as client:
            yield client
    else:
        if workers is None or workers < 1:
            raise SettingsError(f"workers = {workers}: expected a positive number of worker processes")
        # One task at a time per process; numba's threads (set per task) share out the cores.
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
            yield client


def local_threads(workers: int) -> int:
    """numba threads per task for ``workers`` processes on this machine."""
    return max(1, (os.cpu_count() or 1) // workers)


def simulate_task(model: Model, seed: int, lo: int, hi: int, n_keep: int, bins: Bins | None, threads,
                  out: Location | None):
    """One block of paths ``lo .. hi - 1`` on a worker: kernel, invariant check, event counts; the kept rows,
    written to ``out`` as the block's part when given (else returned); the summary values, or with ``bins``
    (the accumulator's edges, axes and with_sums: ``samples.block_histograms``) the block's histogram partials."""
    n = hi - lo
    with engine.thread_count(threads):
        if lo < n_keep:  # every drawn parameter, for the kept rows
            theta = np.empty((n, len(model.parameters)))
            annual = np.empty((n, len(kernel.ANNUAL_VARS), len(model.years)))
            scalars = np.empty((n, len(kernel.SCALAR_VARS)))
            steps = engine.simulate_checked(model.inputs, seed, lo, theta, annual, scalars, model.initial_cash,
                                            model.traced)
        else:
            theta, annual, scalars, steps = engine.Unkept(model, n).run(seed, lo, hi)
        outcome = engine.chunk_outcomes(model, annual, scalars, steps)
        values, loglik = outcome.pop("values"), outcome.get("loglik")
        result: dict[str, object] = outcome  # counts, and a posterior run's loglik and flags
        if lo < n_keep:
            n_rows = min(hi, n_keep) - lo
            rows = (theta[:n_rows], annual[:n_rows], scalars[:n_rows])
            if out is None:
                result["rows"] = tuple(a.copy() for a in rows)
            else:
                weights = None if loglik is None else path_weights(loglik[:, :n_rows])
                table = paths_table(model, *rows, first_id=lo, weights=weights)
                result["part"] = write_parquet(out / staged_part_name(lo // BLOCK_PATHS), table,
                                               run_identity(model.config, seed, model.actuals))
        if bins is None:
            result["values"] = values
        else:
            result["hist"] = block_histograms(*bins, values)
    return result


def blocks(start: int, n_paths: int) -> list[tuple[int, int]]:
    """Blocks of path ids from ``start``: cut at every multiple of ``BLOCK_PATHS`` and at ``n_paths``."""
    out, lo = [], start
    while lo < n_paths:
        hi = min(n_paths, (lo // BLOCK_PATHS + 1) * BLOCK_PATHS)
        out.append((lo, hi))
        lo = hi
    return out


def _reads(probe: Location) -> bool:
    try:
        return probe.read_bytes() == probe.name.encode()
    except OSError:
        return False


def check_reachable(client, out: Location) -> None:
    """Every worker must reach the output location: a probe written here has to read back there."""
    probe = out / f".probe-{uuid.uuid4().hex}"
    probe.write_bytes(probe.name.encode())
    try:
        seen = client.run(_reads, probe, on_error="return")
    finally:
        probe.remove()
    blind = sorted(worker for worker, ok in seen.items() if ok is not True)
    if blind:
        raise SettingsError(f"{out}: the Dask workers {', '.join(blind)} cannot reach it; the output must be a folder "
                            "every worker shares, or an object-store URL")


class Job:
    """One run on the cluster: its blocks, submitted ahead, merged in block order into its ``RunState``.

    The arguments are ``engine.simulate``'s, plus ``out``: the run's output location, where tasks write
    their parts (None: rows come back to the driver)."""

    def __init__(self, client, config: Config | Model, n_paths: int, seed: int, *, out: Location | None = None,
                 threads: int | None = None, keep_paths: KeepPaths | str | int | None = None,
                 progress: Callable[[int], None] | None = None, state: RunState | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 precise_enough: Callable[[dict[str, int], int], bool] | None = None):
        model = Model.of(config)
        self.merged = engine.Merge(model, n_paths, seed, keep_paths, state, progress, should_stop, precise_enough)
        self.state, self.streaming, self.model = self.merged.state, self.merged.streaming, model
        if model.config.simulation.antithetic and self.state.next_id % 2:
            raise SettingsError("cannot resume an antithetic run in the middle of a pair")
        self.client, self.seed, self.threads = client, seed, threads
        self.n_keep = self.state.identity["kept"]
        self.pilot_end = self.merged.pilot_end
        # Tasks write parts only if rows remain to be kept; not in an exact run that may stop early,
        # whose kept rows are known only at the end (the driver writes them).
        writes = self.state.next_id < self.n_keep and (precise_enough is None or self.streaming)
        self.out = out if writes else None
        if self.out is not None:
            check_reachable(client, self.out)
        self.todo = deque(blocks(self.state.next_id, n_paths))
        self.pending: deque = deque()  # (lo, hi, future) in block order
        self.bins: Bins | None = None  # the histograms' edges, axes and with_sums, once the pilot has fixed them
        self.shared: dict[str, Any] = {}  # model and bins, scattered to the workers (Dask futures)
        self.resubmitted: dict[int, int] = {}  # block start: times its task was lost and submitted again
        self.started = time.perf_counter()

    @property
    def done(self) -> bool:
        return not self.todo and not self.pending

    def submit(self) -> bool:
        """Submit the next block; False when there is none, or it must wait for the pilot's edges."""
        if not self.todo:
            return False
        lo, hi = self.todo[0]
        if self._binned(lo) and self.state.acc is None:
            return False
        self.todo.popleft()
        self.pending.append((lo, hi, self._submit(lo, hi)))
        return True

    def _binned(self, lo: int) -> bool:
        return self.streaming and lo >= self.pilot_end and lo % BLOCK_PATHS == 0

    def _scattered(self, name: str, value):
        """``value`` on the workers, scattered again if the copies there were lost."""
        future = self.shared.get(name)
        if future is None or future.status != "finished":
            # In a list, so that a tuple is one future, not one per item.
            future = self.shared[name] = self.client.scatter([value], broadcast=True, hash=False)[0]
        return future

    def _submit(self, lo: int, hi: int):
        binned = self._binned(lo)
        if binned and self.bins is None:
            acc = self.state.acc
            assert acc is not None  # submit() holds binned blocks back until the pilot has made the histograms
            self.bins = (acc.edges, acc.grid[0], acc.with_sums)
        aligned = lo % BLOCK_PATHS == 0
        # The key names the run and the block: the dashboard shows each run's progress.
        return self.client.submit(simulate_task, self._scattered("model", self.model), self.seed, lo, hi,
                                  self.n_keep, self._scattered("bins", self.bins) if binned else None,
                                  self.threads, self.out if aligned else None,
                                  key=f"{self.model.config.name}-{lo // BLOCK_PATHS}-{uuid.uuid4().hex}",
                                  retries=RETRIES, pure=False)

    def merge(self) -> None:
        """Merge the finished blocks at the head of the queue, in block order."""
        state = self.state
        while self.pending and self.pending[0][2].done():
            lo, hi, future = self.pending[0]
            try:
                part = future.result()
            except CancelledError:
                # A worker died holding the only copy of an input (the active memory manager keeps one copy
                # of scattered data): submit again this block, and the others whose inputs were lost.
                for i, (lo, hi, other) in enumerate(self.pending):
                    if other is future or other.cancelled():
                        tries = self.resubmitted[lo] = self.resubmitted.get(lo, 0) + 1
                        if tries > RETRIES:
                            raise
                        self.pending[i] = (lo, hi, self._submit(lo, hi))
                continue
            self.pending.popleft()
            future.release()
            if "rows" in part:
                k = min(hi, self.n_keep)
                for dst, src in zip((state.theta, state.annual, state.scalars), part["rows"]):
                    dst[lo:k] = src
            if "part" in part:
                state.parts[lo // BLOCK_PATHS] = part["part"]
            before = self.merged.n_paths
            self.merged.add(lo, hi, part["counts"], values=part.get("values"), hist=part.get("hist"),
                            loglik=part.get("loglik"), flags=part.get("flags"))
            if self.merged.n_paths < before:  # precise enough: the blocks after this one are not needed
                self.todo.clear()
                self.cancel()

    def cancel(self) -> None:
        for *_, future in self.pending:
            future.cancel()
        self.pending.clear()

    def simulation(self) -> Simulation:
        return self.merged.simulation(time.perf_counter() - self.started)


def run_jobs(client, jobs: list[Job], in_flight: int | None = None) -> list[Simulation]:
    """Run ``jobs`` over ``client`` at once: their blocks are submitted in turn, at most ``in_flight`` at a
    time (default: ``TASKS_PER_THREAD`` per worker thread), and each job merges its own in block order,
    so each result is bit-identical to that run on its own."""
    distributed = _import_distributed()
    if in_flight is None:
        in_flight = TASKS_PER_THREAD * (sum(client.nthreads().values()) or 1)
    turns = deque(jobs)
    try:
        while not all(job.done for job in jobs):
            idle = 0  # jobs in a row that had nothing to submit
            while idle < len(turns) and sum(len(job.pending) for job in jobs) < in_flight:
                job = turns[0]
                turns.rotate(-1)
                idle = 0 if job.submit() else idle + 1
            with contextlib.suppress(CancelledError):  # a task lost its inputs: merge submits it again
                distributed.wait([job.pending[0][2] for job in jobs if job.pending], return_when="FIRST_COMPLETED")
            for job in jobs:
                job.merge()
    finally:
        for job in jobs:
            job.cancel()
    return [job.simulation() for job in jobs]


def simulate(config: Config, n_paths: int, seed: int, client, *, in_flight: int | None = None,
             **options) -> Simulation:
    """``engine.simulate`` on the workers of ``client`` (a ``distributed.Client``): the same arguments
    (``options``: those of :class:`Job`) and the same, bit-identical result."""
    return run_jobs(client, [Job(client, config, n_paths, seed, **options)], in_flight)[0]


def describe(client) -> str:
    """The cluster in a few words, for the run's metadata."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    return f"dask {info.get('address', '?')}: {len(workers)} workers, {sum(client.nthreads().values())} threads"
