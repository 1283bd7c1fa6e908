"""Running the kernel over many paths: chunks, threads, progress, what is kept, and stopping cleanly.

Memory is bounded by the chunk size, the per-path rows the user keeps, and the summaries'
fixed-size histograms: it does not grow with the path count otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from . import __version__, kernel, stats
from .actuals import path_weights
from .built_model import Model
from .config import Config
from .defaults import DEFAULT_CHUNK
from .errors import InvariantError, SettingsError
from .keep import KeepPaths
from .layout import CHECK_EVERY
from .memory import small_pages
from .model import ModelInputs
from .results import ResultsError
from .samples import BLOCK_PATHS, PILOT_PATHS, Accumulator, SortedSample, WeightedSample, bin_edges, sorted_rows
from .storage import first_line
from .summary import counts_of, event_counts, event_flags, needs_bin_sums, variables


class Interrupted(Exception):
    """The run was asked to stop; ``state`` holds everything needed to resume it."""

    def __init__(self, state: "RunState"):
        super().__init__(f"stopped after {state.next_id:,} paths")
        self.state = state


@dataclass
class Simulation:
    """What a run collected: the kept per-path rows (path ids 0 .. kept - 1), event counts, samples.

    ``parts`` lists the blocks whose rows Dask tasks wrote to the output themselves (index -> manifest
    entry, see :mod:`simulator.results`): their rows are not held here (undefined in the arrays)."""

    model: Model
    seed: int
    n_paths: int
    theta: np.ndarray       # (kept, n_drawn) drawn parameters, named by ``model.parameters``
    annual: np.ndarray      # (kept, len(kernel.ANNUAL_VARS), n_years)
    scalars: np.ndarray     # (kept, len(kernel.SCALAR_VARS))
    counts: dict[str, int]  # paths meeting each probability metric's event
    samples: dict = field(repr=False)  # summary variable -> SortedSample, HistogramSample or WeightedSample
    seconds: float = 0.0
    parts: dict[int, dict] = field(default_factory=dict)
    # A posterior run's (see Model.actuals): per reported figure and path the log-likelihood (figures, n_paths),
    # and per probability metric and path whether the path meets its event (events, n_paths).
    # And each path's likelihood weight, from its log-likelihoods (actuals.path_weights).
    loglik: np.ndarray | None = None
    flags: np.ndarray | None = None
    weights: np.ndarray | None = None

    @property
    def config(self) -> Config:
        return self.model.config

    @property
    def exact(self) -> bool:
        """Whether every path was kept, so quantiles are exact order statistics."""
        return len(self.scalars) == self.n_paths


@dataclass
class RunState:
    """Progress of a run: paths ``0 .. next_id - 1`` are done. Saved when a run is interrupted."""

    identity: dict          # config hash, seed, n_paths, rows kept, simulator version: what a resume must match
    theta: np.ndarray       # kept rows (filled up to min(next_id, kept), except the blocks in ``parts``)
    annual: np.ndarray
    scalars: np.ndarray
    values: np.ndarray      # (variables, paths) summary values of an exact run (every row kept); else empty
    next_id: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    pilot: np.ndarray | None = None  # (variables, pilot paths) before the edges exist, filled up to next_id
    acc: Accumulator | None = None
    parts: dict[int, dict] = field(default_factory=dict)  # blocks whose rows tasks wrote (see Simulation)
    loglik: np.ndarray | None = None  # a posterior run's, filled up to next_id (see Simulation)
    flags: np.ndarray | None = None

    def held(self, n: int) -> np.ndarray:
        """Which of the first ``n`` kept rows this state holds (not those of ``parts``)."""
        mask = np.ones(n, dtype=bool)
        for index in self.parts:
            mask[index * BLOCK_PATHS:(index + 1) * BLOCK_PATHS] = False
        return mask

    def save(self, folder) -> None:
        """Into ``folder``, a :class:`simulator.storage.Location`. The arrays go to a file of their own name,
        named with their checksum by ``state.json``, which is written last: a save that fails (a full disk)
        leaves the previous progress whole."""
        folder.mkdir()
        rows = self.held(min(self.next_id, len(self.scalars)))
        arrays = {"theta": self.theta[:len(rows)][rows], "annual": self.annual[:len(rows)][rows],
                  "scalars": self.scalars[:len(rows)][rows], "values": self.values[:, :self.next_id]}
        if self.pilot is not None:
            arrays["pilot"] = self.pilot[:, :self.next_id]
        if self.acc is not None:
            arrays.update({f"acc_{k}": v for k, v in self.acc.arrays().items()})
        if self.loglik is not None and self.flags is not None:
            arrays.update(loglik=self.loglik[:, :self.next_id], flags=self.flags[:, :self.next_id])
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
        before = folder.names()
        arrays_file = f"state-{self.next_id}.npz"
        (folder / arrays_file).write_bytes(data)
        meta = {"identity": self.identity, "next_id": self.next_id, "counts": self.counts,
                "names": self.acc.names if self.acc is not None else None,
                "parts": {str(index): entry for index, entry in self.parts.items()},
                "arrays": arrays_file, "arrays_sha256": hashlib.sha256(data).hexdigest()}
        (folder / STATE_FILE).write_text(_sealed(meta))
        for name in before:  # the arrays of an earlier save
            if name != arrays_file and name.endswith(".npz"):
                (folder / name).remove()

    @classmethod
    def load(cls, folder, fresh: "RunState") -> "RunState":
        """The saved state in ``folder`` (a :class:`simulator.storage.Location`), checked against the run
        ``fresh`` would start, and against its checksums (an edited or truncated state is refused)."""
        unusable = f"{folder}: the saved progress is damaged or was edited"
        again = "; start the run again with --force"
        try:
            meta = _unsealed((folder / STATE_FILE).read_text())
            data = (folder / meta["arrays"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != meta["arrays_sha256"]:
                raise ValueError("its arrays differ from their checksum")
            arrays = np.load(io.BytesIO(data))
            parts, values = meta["parts"], arrays["values"]
            fresh.next_id, fresh.counts = int(meta["next_id"]), dict(meta["counts"])
            fresh.parts = {int(index): entry for index, entry in parts.items()}
        except KeyError as e:
            raise ResultsError(f"{folder}: progress saved by another version of the simulator (no {e}){again}") \
                from None
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise ResultsError(f"{unusable} ({first_line(e)}){again}") from None
        if meta["identity"] != fresh.identity:
            diff = [k for k in fresh.identity if meta["identity"].get(k) != fresh.identity[k]]
            raise ResultsError(f"{folder}: the saved run differs in {', '.join(diff)}; "
                               "resume with the same config, seed, path count, --keep-paths and simulator version")
        rows = fresh.held(min(fresh.next_id, len(fresh.scalars)))
        for name in ("theta", "annual", "scalars"):
            getattr(fresh, name)[:len(rows)][rows] = arrays[name]
        fresh.values[:, :fresh.next_id] = values
        if fresh.loglik is not None and fresh.flags is not None:
            fresh.loglik[:, :fresh.next_id] = arrays["loglik"]
            fresh.flags[:, :fresh.next_id] = arrays["flags"]
        if "pilot" in arrays:
            fresh.pilot = arrays["pilot"]  # collect widens it to the whole pilot
        if meta["names"] is not None:
            fresh.acc = Accumulator.from_arrays(meta["names"], {k[4:]: arrays[k] for k in arrays.files
                                                                if k.startswith("acc_")})
        return fresh


STATE_FILE = "state.json"


def _sealed(meta: dict) -> str:
    """``meta`` as JSON with the SHA-256 of its own canonical text: any edit of the saved state shows."""
    body = json.dumps(meta, sort_keys=True)
    # Written in its own key order: the event counts' order is the summary's.
    return json.dumps({**meta, "sha256": hashlib.sha256(body.encode()).hexdigest()}, indent=2)


def _unsealed(text: str) -> dict:
    meta = json.loads(text)
    if not isinstance(meta, dict):
        raise ValueError("state.json is not a JSON object")
    if "sha256" not in meta:
        raise KeyError("checksum")  # saved before states were sealed
    seal = meta.pop("sha256")
    if seal != hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest():
        raise ValueError("state.json differs from its checksum")
    return meta


def check_threads(threads: int | None) -> None:
    available: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # numba sets it at run time
    if threads is not None and not 1 <= threads <= available:
        raise SettingsError(f"threads = {threads}: expected 1..{available} on this machine")


@contextlib.contextmanager
def thread_count(threads: int | None):
    """Run numba's parallel loops on ``threads`` threads inside the block."""
    if threads is None:
        yield
        return
    check_threads(threads)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def check_settings(n_paths: int, seed: int, keep_paths: KeepPaths | str | int | None) -> int:
    """The number of rows a run keeps, once its path count, seed and ``keep_paths`` (see :class:`KeepPaths`)
    are checked."""
    if n_paths < 1:
        raise SettingsError(f"n_paths = {n_paths}: expected a positive number of paths")
    if not 0 <= seed < 2**63:
        raise SettingsError(f"seed = {seed}: expected an integer in [0, 2**63)")
    return KeepPaths.parse(keep_paths).rows(n_paths)


def new_state(model: Model, n_paths: int, seed: int, keep_paths: KeepPaths | str | int | None) -> RunState:
    n_keep = check_settings(n_paths, seed, keep_paths)
    # A posterior run keeps every path's summary values, for its weighted order statistics.
    n_values = n_paths if n_keep == n_paths or model.actuals is not None else 0
    # The version too: another version's kernel may give other numbers for the same paths.
    identity = {"config_hash": model.config.digest(), "seed": seed, "n_paths": n_paths, "kept": n_keep,
                "simulator_version": __version__}
    if model.actuals is not None:
        identity["actuals_hash"] = model.actuals.digest
    with small_pages():
        state = RunState(identity, np.empty((n_keep, len(model.parameters))),
                         np.empty((n_keep, len(kernel.ANNUAL_VARS), len(model.years))),
                         np.empty((n_keep, len(kernel.SCALAR_VARS))), np.empty((len(model.variables), n_values)))
        if model.actuals is not None:
            state.loglik = np.empty((len(model.actuals.figures), n_paths))
            state.flags = np.empty((len(model.events), n_paths), np.bool_)
    return state




def check_antithetic(config: Config, n_paths: int, streaming: bool) -> None:
    """An antithetic run needs whole pairs and every row (its standard errors come from the pairs)."""
    if not config.simulation.antithetic:
        return
    if n_paths % 2:
        raise SettingsError(f"n_paths = {n_paths}: an antithetic run needs an even number of paths")
    if streaming:
        raise SettingsError("an antithetic run keeps every path's row (--keep-paths all): its standard errors "
                            "come from the pairs")


def simulate(config: Config | Model, n_paths: int, seed: int, *, chunk_size: int = DEFAULT_CHUNK,
             threads: int | None = None, keep_paths: KeepPaths | str | int | None = None,
             progress: Callable[[int], None] | None = None, state: RunState | None = None,
             should_stop: Callable[[], bool] | None = None,
             precise_enough: Callable[[dict[str, int], int], bool] | None = None) -> Simulation:
    """Simulate paths ``0 .. n_paths - 1`` chunk by chunk.

    With every row kept, summaries use exact order statistics. Otherwise each chunk feeds integer
    event counts and streamed histograms (bin edges from the first ``PILOT_PATHS`` paths), and
    only the first ``keep`` rows stay in memory. Either way the results do not depend on
    ``chunk_size`` or ``threads``. ``progress(k)`` is called with the paths finished per chunk.

    ``state`` continues an interrupted run (see ``RunState``). ``should_stop()`` is asked after
    each chunk; when it answers True the run raises ``Interrupted`` carrying its state.
    Every chunk is checked for the accounting invariants (``InvariantError``).

    ``precise_enough(counts, n)`` makes ``n_paths`` a maximum: it is asked at every multiple of
    ``CHECK_EVERY`` paths (past the histograms' pilot and the kept rows) and the run stops at the first ``n`` where
    it answers True. Chunks are split at those points, so where a run stops does not depend on
    the chunk size, and the result equals a run of exactly ``n`` paths with the same keep_paths.
    """
    if chunk_size < 1:
        raise SettingsError(f"chunk_size = {chunk_size}: expected a positive number of paths")
    model = Model.of(config)
    with thread_count(threads), small_pages():
        merge = Merge(model, n_paths, seed, keep_paths, state, progress, should_stop, precise_enough)
        state, n_keep = merge.state, merge.n_keep
        if model.config.simulation.antithetic:
            chunk_size += chunk_size % 2  # pairs never straddle two chunks
        unkept = Unkept(model, min(chunk_size, n_paths - n_keep))
        start_time = time.perf_counter()
        lo = state.next_id
        while lo < merge.n_paths:
            hi = min(lo + chunk_size, n_paths)
            if precise_enough is not None:
                hi = min(hi, (lo // CHECK_EVERY + 1) * CHECK_EVERY)
            if lo < n_keep:  # kept rows: the kernel writes them in place
                hi = min(hi, n_keep)
                theta, annual, scalars = (a[lo:hi] for a in (state.theta, state.annual, state.scalars))
                steps = simulate_checked(model.inputs, seed, lo, theta, annual, scalars, model.initial_cash,
                                         model.traced)
            else:
                theta, annual, scalars, steps = unkept.run(seed, lo, hi)
            merge.add(lo, hi, **chunk_outcomes(model, annual, scalars, steps))
            lo = hi
        return merge.simulation(time.perf_counter() - start_time)


def chunk_outcomes(model: Model, annual: np.ndarray, scalars: np.ndarray, steps: np.ndarray) -> dict:
    """What :meth:`Merge.add` takes of a run of paths, by its argument names: their event ``counts`` and summary
    ``values``, and for a posterior run their per-figure log-likelihoods ``loglik`` (from their first
    ``model.traced`` steps) and event ``flags``."""
    if model.actuals is None:
        return {"counts": event_counts(model, annual, scalars), "values": variables(model, annual, scalars)}
    flags = event_flags(model, annual, scalars)
    return {"counts": counts_of(model, flags), "values": variables(model, annual, scalars),
            "loglik": model.log_likelihoods(steps), "flags": flags}


class Merge:
    """The one merge step of both engines (here, chunk by chunk; :mod:`simulator.distributed`, block by block
    in block order): each run of paths' event counts and summary values (or, on a cluster, its histogram
    partials) into the run's state, then progress, the auto-stop and the stop request. The arguments are
    :func:`simulate`'s."""

    def __init__(self, model: Model, n_paths: int, seed: int, keep_paths, state: RunState | None,
                 progress: Callable[[int], None] | None, should_stop: Callable[[], bool] | None,
                 precise_enough: Callable[[dict[str, int], int], bool] | None):
        self.model, self.n_paths, self.seed = model, n_paths, seed
        self.state = state or new_state(model, n_paths, seed, keep_paths)
        self.n_keep = self.state.identity["kept"]
        check_antithetic(model.config, n_paths, self.n_keep < n_paths)
        # Whether summaries come from histograms: a posterior run keeps every path's values (new_state).
        self.streaming = self.n_keep < n_paths and model.actuals is None
        self.pilot_end = min(n_paths, PILOT_PATHS)
        self.progress, self.should_stop, self.precise_enough = progress, should_stop, precise_enough

    def add(self, lo: int, hi: int, counts: dict[str, int], values: np.ndarray | None = None, hist=None,
            loglik: np.ndarray | None = None, flags: np.ndarray | None = None) -> None:
        """Paths ``lo .. hi - 1`` are done: their ``counts``, and their summary ``values`` (rows of
        ``model.variables``) or, past the pilot of a streamed run, their histogram partials ``hist``; a posterior
        run's ``loglik`` and ``flags`` too (see :class:`Simulation`). Lowers ``n_paths`` to ``hi`` where the run is
        precise enough; raises :class:`Interrupted` on a stop request."""
        state = self.state
        if state.loglik is not None and state.flags is not None:
            assert loglik is not None and flags is not None  # a posterior run's paths bring both
            state.loglik[:, lo:hi] = loglik
            state.flags[:, lo:hi] = flags
        for k, v in counts.items():
            state.counts[k] = state.counts.get(k, 0) + v
        if hist is not None:
            assert state.acc is not None  # partials come only for blocks past the pilot, which made the histograms
            state.acc.merge_block(lo, hi - lo, hist)
        else:
            assert values is not None  # a run of paths brings its values or its partials
            collect(state, values, lo, hi, self.pilot_end, self.streaming, self.model.variables)
        state.next_id = hi
        if self.progress is not None:
            self.progress(hi - lo)
        if stop_here(self.precise_enough, state, hi, self.n_paths, self.streaming, self.pilot_end):
            self.n_paths = hi
        elif self.should_stop is not None and hi < self.n_paths and self.should_stop():
            raise Interrupted(state)

    def simulation(self, seconds: float) -> Simulation:
        """The run's rows (an early stop keeps fewer) and summary samples, once every path is merged."""
        state, n_paths = self.state, self.n_paths
        n_kept = min(self.n_keep, n_paths)
        state.theta, state.annual, state.scalars = state.theta[:n_kept], state.annual[:n_kept], state.scalars[:n_kept]
        loglik = flags = weights = None
        if state.loglik is not None and state.flags is not None:
            loglik, flags = state.loglik[:, :n_paths], state.flags[:, :n_paths]
            weights = path_weights(loglik)
            # One variable a thread: numpy's sorts and gathers release the GIL.
            with ThreadPoolExecutor(numba.get_num_threads()) as pool:
                built = pool.map(lambda v: WeightedSample(v, weights), state.values[:, :n_paths])
                samples = dict(zip(self.model.variables, built))
        elif self.streaming:
            assert state.acc is not None  # every path is merged: the pilot's, which made the histograms, too
            samples = state.acc.finish()
        else:
            paired = self.model.config.simulation.antithetic
            values = np.ascontiguousarray(state.values[:, :n_paths])
            samples = {k: SortedSample(v, paired, ordered) for k, v, ordered in
                       zip(self.model.variables, values, sorted_rows(values))}
        return Simulation(self.model, self.seed, n_paths, state.theta, state.annual, state.scalars, state.counts,
                          samples, seconds, state.parts, loglik, flags, weights)


def stop_here(precise_enough, state: RunState, hi: int, n_paths: int, streaming: bool, pilot_end: int) -> bool:
    """Auto-stop: only at multiples of CHECK_EVERY, past the histograms' pilot and the kept rows, so that the
    result equals a fixed run of ``hi`` paths. A posterior run counts effective paths (``effective_counts``)."""
    if not (precise_enough is not None and hi % CHECK_EVERY == 0 and hi < n_paths
            and (not streaming or hi >= max(pilot_end, state.identity["kept"] + 1))):
        return False
    if state.loglik is not None and state.flags is not None:
        return precise_enough(*stats.effective_counts(path_weights(state.loglik[:, :hi]),
                                                      state.flags[:, :hi], state.counts))
    return precise_enough(state.counts, hi)



def collect(state: RunState, values: np.ndarray, lo: int, hi: int, pilot_end: int, streaming: bool,
            names: tuple[str, ...]) -> None:
    """Keep the summary values of paths ``lo .. hi - 1`` (``variables``' rows, named by ``names``): all of
    them in an exact run, else in the histograms."""
    if not streaming:
        state.values[:, lo:hi] = values
        return
    if state.acc is not None:
        state.acc.add(values, lo)
        return
    # Before the histograms exist, collect the pilot that fixes their edges: in one array, not a list of chunks
    # joined at the end (a copy of it more, which took ~0.1 s of a 10^6-path run).
    if state.pilot is None or state.pilot.shape[1] < pilot_end:  # new, or resumed with its first paths
        done = state.pilot
        state.pilot = np.empty((len(values), pilot_end))
        if done is not None:
            state.pilot[:, :lo] = done
    state.pilot[:, lo:min(hi, pilot_end)] = values[:, :pilot_end - lo]
    if hi >= pilot_end:
        pilot = state.pilot
        state.acc = Accumulator(names, *bin_edges(pilot), [needs_bin_sums(name) for name in names])
        state.acc.add(pilot, 0)
        state.pilot = None
        if hi > pilot_end:
            state.acc.add(values[:, pilot_end - lo:], pilot_end)


class Unkept:
    """The kernel for chunks whose rows are not kept: into buffers reused chunk after chunk, and of the drawn
    parameters only the initial cash, which the invariant checks read (where it is drawn)."""

    def __init__(self, model: Model, width: int):
        self.inputs, self.traced = model.unkept, model.traced
        drawn = isinstance(model.initial_cash, int)
        self.initial_cash = 0 if drawn else model.initial_cash  # its column in the narrowed theta
        self.buffers = (np.empty((width, int(drawn))), np.empty((width, len(kernel.ANNUAL_VARS), len(model.years))),
                        np.empty((width, len(kernel.SCALAR_VARS))))

    def run(self, seed: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(theta, annual, scalars, steps) of paths ``lo .. hi - 1``, checked; valid until the next call."""
        theta, annual, scalars = (b[:hi - lo] for b in self.buffers)
        steps = simulate_checked(self.inputs, seed, lo, theta, annual, scalars, self.initial_cash, self.traced)
        return theta, annual, scalars, steps


def simulate_checked(inputs: ModelInputs, seed: int, lo: int, theta, annual, scalars, initial_cash,
                     traced: int = 0) -> np.ndarray:
    """The kernel on paths ``lo ..`` into the given outputs, then ``check_invariants``; returns the paths' first
    ``traced`` steps (paths, traced, len(STEP_VARS)): a posterior run's weights read them."""
    steps = np.empty((len(theta), traced, len(kernel.STEP_VARS)))
    if traced:
        kernel.trace_block(np.uint64(seed), lo, inputs, theta, annual, scalars, steps)
    else:
        kernel.simulate_block(np.uint64(seed), lo, inputs, theta, annual, scalars)
    check_invariants(theta, annual, scalars, initial_cash, lo)
    return steps


def check_invariants(theta, annual, scalars, initial_cash, first_id: int) -> None:
    """No NaN, infinity or value beyond kernel.OUTPUT_LIMIT in any output, and per path: cash at the end = initial
    cash + sum of FCF + funding raised + credit outstanding (to rounding). ``initial_cash``: its column in
    ``theta``, or its fixed value."""
    drawn = isinstance(initial_cash, int)
    i, what, residual = kernel.first_broken_path(theta, annual, scalars, initial_cash if drawn else -1,
                                                 0.0 if drawn else float(initial_cash))
    if i < 0:
        return
    problem = (f"cash identity off by {residual:.3g}" if what == 4 else
               f"non-finite {('parameters', 'yearly outputs', 'path outputs')[what - 1]} (NaN, or beyond "
               f"+/-{kernel.OUTPUT_LIMIT:g}: extreme growth, drift or shock settings?)")
    raise InvariantError(f"path {first_id + i}: {problem}; replay it with `simulator replay DIR --path {first_id + i}`")


TRACE_PATHS = 20_000  # by_step.parquet: per-step quantiles from the first this-many path ids


def trace_steps(model: Model, n_paths: int, seed: int, threads: int | None = None) -> np.ndarray:
    """Per-step values (paths, steps, len(kernel.STEP_VARS)) of the first min(n_paths, TRACE_PATHS) path ids,
    from ``kernel.trace_block``: constant time and memory whatever the run's size."""
    inputs = model.inputs
    n = min(n_paths, TRACE_PATHS)
    theta = np.empty((n, len(model.parameters)))
    annual = np.empty((n, len(kernel.ANNUAL_VARS), inputs.n_years))
    scalars = np.empty((n, len(kernel.SCALAR_VARS)))
    steps = np.empty((n, model.n_steps, len(kernel.STEP_VARS)))
    with thread_count(threads):
        kernel.trace_block(np.uint64(seed), 0, inputs, theta, annual, scalars, steps)
    return steps
