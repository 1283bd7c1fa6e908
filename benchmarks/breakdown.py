"""Where a path's time goes: the kernel's phases timed by the CPU's cycle counter (one thread), the engine's
steps after the kernel (one thread and all), default config; and the kernel's branch-free exp and log against
glibc's.

    python benchmarks/breakdown.py

The phases are timed in a copy of simulator/kernel.py with a read of the cycle counter
(llvm.readcyclecounter) inserted where each phase starts (PHASES), compiled in a temporary module; the
probed kernel's total is printed next to the plain kernel's so the probes' own cost shows. Minimum of
repeated runs (the least disturbed by other processes), per path.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator import engine, kernel, load_config  # noqa: E402
from simulator.built_model import Model  # noqa: E402
from simulator.samples import (  # noqa: E402
    GRID_CELLS,
    PILOT_PATHS,
    Accumulator,
    _bin_rows,
    bin_edges,
    empty_histograms,
    lookup_grids,
    sum_rows,
)
from simulator.summary import event_counts, needs_bin_sums, variables  # noqa: E402

from run_benchmarks import floor_kernel, floor_shape  # noqa: E402  (this folder is on sys.path)

N = 1 << 16

# (line of the tile, in simulate_tiles, where a phase starts; the phase); a phase ends where the next probe is read.
# The phases are the tile's calls of its phase functions (inlined: a probe between two calls times the one before).
PHASES = [
    ("        draw_parameters(inputs", "parameters: normal scores, copula, closed forms and table lookups"),
    ("        draw_scheduled_raises(", "scheduled raises: closing times and draws"),
    ("        start_segments(inputs", "per-path constants, initial state"),
    ("            ratio_to_plan(", "step: plan ratio"),
    ("            n_shocked, n_supply = draw_shocks(", "step: normals, uniforms, Poisson counts, correlated shocks"),
    ("            revenue(inputs", "step: revenue of the segments"),
    ("            costs(inputs", "step: supply shocks, price, costs and cash flow"),
    ("            scheduled_funding(", "step: scheduled funding"),
    ("            contingent_funding(", "step: contingent raise"),
    ("            credit_line(", "step: credit line, shortfall, next step's runway rule"),
    ("            if j == spy - 1:\n", "step: year-end totals"),
    ("        record_paths(", "path outputs"),
]
# Appended to the probed copy: the cycle counter, and the probe that closes the running phase.
PROBE_HELPERS = '''

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _cycles(typingctx):
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                            "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


@jit(inline="always")
def _probe(cycles, running, starting, last):
    now = _cycles()
    cycles[running] += now - last
    return starting, now
'''


def best_ns(fn, repeats: int = 9) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) / N * 1e9


def probed_source(source: str) -> str:
    """kernel.py with a probe before every phase of ``PHASES`` and at the end of a tile; every kernel entry
    point takes the cycle counts array as one more argument."""
    for k, (anchor, name) in enumerate(PHASES):
        if source.count(anchor) != 1:
            raise SystemExit(f"phase {name!r}: {anchor!r} is not once in kernel.py; update PHASES")
        indent = anchor[:len(anchor) - len(anchor.lstrip())]
        source = source.replace(anchor, f"{indent}_phase, _last = _probe(cycles, _phase, {k + 1}, _last)\n{anchor}")
    edits = [  # (text, replacement): the cycles argument, the first read and the last probe
        ("        m_out = theta_out.shape[0]\n",
         "        _phase, _last = 0, _cycles()\n        m_out = theta_out.shape[0]\n"),
        ("        record_paths(lane, theta, scalars, m_out)\n",
         "        record_paths(lane, theta, scalars, m_out)\n        _probe(cycles, _phase, 0, _last)\n"),
        ("steps_all, tile_lo, tile_hi):\n", "steps_all, tile_lo, tile_hi, cycles):\n"),
        ("bounds[k], bounds[k + 1])", "bounds[k], bounds[k + 1], cycles)"),
        # trace_block's and simulate_block's signatures (every occurrence is replaced)
        ("theta_out, annual, scalars, steps):\n", "theta_out, annual, scalars, steps, cycles):\n"),
        ("theta_out, annual, scalars):\n", "theta_out, annual, scalars, cycles):\n"),
        ("theta_out, annual, scalars, no_steps)", "theta_out, annual, scalars, no_steps, cycles)"),
    ]
    for old, new in edits:
        if old not in source:
            raise SystemExit(f"{old!r} is no longer in kernel.py; update probed_source")
        source = source.replace(old, new)
    return source + PROBE_HELPERS  # compiled uncached: jit caches only the package's own files


def load_module(tmp: Path, source: str):
    """``source`` as a module of the ``simulator`` package (its relative imports resolve there)."""
    path = tmp / "probed_kernel.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"simulator.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def phase_rows(args, out) -> tuple[float, float, list[tuple[str, float]]]:
    """(plain kernel ns a path, probed kernel ns a path, [(phase, cycles a path)]) of the least disturbed run."""
    plain = best_ns(lambda: kernel.simulate_block(np.uint64(1), 0, args, *out))
    with tempfile.TemporaryDirectory() as tmp:
        probed = load_module(Path(tmp), probed_source(Path(kernel.__file__).read_text()))
        cycles = np.zeros(len(PHASES) + 1, np.int64)
        probed.simulate_block(np.uint64(1), 0, args, *out, cycles)  # compile
        best = None
        for _ in range(9):
            cycles[:] = 0
            start = time.perf_counter()
            probed.simulate_block(np.uint64(1), 0, args, *out, cycles)
            seconds = time.perf_counter() - start
            if best is None or seconds < best[0]:
                best = seconds, cycles.copy()
    seconds, cycles = best
    names = ["tile set-up"] + [name for _, name in PHASES]
    return plain, seconds / N * 1e9, [(name, c / N) for name, c in zip(names, cycles) if c]


def applier(fn):
    """A loop of ``fn`` over an array. ``fn`` is a global of the loop, not an argument: a function passed as an
    argument is called, not inlined, and the loop would not compile to SIMD as the kernel's loops do."""
    @numba.njit(error_model="numpy")  # as the kernel: no division checks
    def apply(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])
    return apply


@numba.njit(inline="always")
def libm_exp(x):
    return math.exp(x)


@numba.njit(inline="always")
def libm_log(x):
    return math.log(x)


def elementary_rows() -> list[tuple[str, float]]:
    x = np.abs(np.random.default_rng(1).normal(0.0, 0.5, N)) + 0.01
    out, ref = np.empty(N), np.empty(N)
    rows = []
    for name, mine, libm in (("exp", applier(kernel.exp_lanes), applier(libm_exp)),
                             ("log", applier(kernel.log_lanes), applier(libm_log))):
        libm(x, ref)
        mine(x, out)
        assert np.max(np.abs(out / ref - 1.0)) < 1e-13
        rows += [(f"{name}, glibc, in a loop (ns per call)", best_ns(lambda: libm(x, ref))),
                 (f"kernel.{name}_lanes, in a loop that compiles to SIMD (ns per call)", best_ns(lambda: mine(x, out)))]
    return rows


def tail_rows() -> list[tuple[str, float, float]]:
    """Binning a value (ns) on the lookup grid lookup_grids chooses and on one uniform in the value, for
    variables from light- to heavy-tailed and one with far outliers: (variable, adaptive, uniform)."""
    rng = np.random.default_rng(1)
    draws = {"normal": lambda n: rng.normal(0, 1, n), "lognormal, sigma 1": lambda n: rng.lognormal(0, 1, n),
             "lognormal, sigma 2": lambda n: rng.lognormal(0, 2, n),
             "lognormal, sigma 3": lambda n: rng.lognormal(0, 3, n),
             "-Pareto, alpha 0.8": lambda n: -rng.pareto(0.8, n),
             "lognormal, sigma 1, 1 in 5,000 up to 1e30": lambda n: np.where(rng.random(n) < 2e-4, 1e30 * rng.random(n),
                                                                           rng.lognormal(0, 1, n))}
    rows = []
    for name, draw in draws.items():
        (edges, axes), values = bin_edges(draw(PILOT_PATHS)[None]), draw(N)[None]
        finite = edges[0][np.isfinite(edges[0])]
        uniform = np.array([[0.0, np.inf, finite[0], GRID_CELLS / (finite[-1] - finite[0])]])
        with_sums = np.zeros(1, bool)  # counts only, as most variables
        acc = (sum_rows(with_sums), *empty_histograms(edges, with_sums), np.full(1, np.inf), np.full(1, -np.inf))
        grids = [lookup_grids(edges, a) for a in (axes, uniform)]
        times = [best_ns(lambda: _bin_rows(values, edges, *grid, *acc), 7) for grid in grids]
        rows.append((name, *times))
    return rows


def main():
    numba.set_num_threads(1)
    cfg = load_config()
    model = Model.of(cfg)
    inputs = model.inputs
    streamed = engine.Unkept(model, N)  # the kernel as a streamed run calls it
    args, out = streamed.inputs, streamed.buffers
    kernel.simulate_block(np.uint64(1), 0, args, *out)  # compile
    plain, probed, phases = phase_rows(args, out)
    draw, (_, shape, _), last = floor_kernel(), floor_shape(inputs), np.empty(N)
    draw(np.uint64(1), 10, *shape, last)
    floor = best_ns(lambda: draw(np.uint64(1), N, *shape, last))

    theta, annual, scalars = out
    initial_cash = streamed.initial_cash
    values = variables(model, annual, scalars)
    names = model.variables
    # The edges from a pilot as a run's (other paths than those binned): a pilot of only these paths would
    # make every value met twice a value that recurs, with a bin of its own.
    pilot_run = engine.Unkept(model, N)
    pilot = np.concatenate([variables(model, *pilot_run.run(2, lo, lo + N)[1:]) for lo in range(0, PILOT_PATHS, N)],
                           axis=1)
    acc = Accumulator(names, *bin_edges(pilot), [needs_bin_sums(name) for name in names])

    def bin_again():
        acc.next_id = 0
        acc.add(values, 0)

    bin_again()  # compile
    steps = [
        ("invariant checks", lambda: engine.check_invariants(theta, annual, scalars, initial_cash, 0)),
        ("event counts", lambda: event_counts(model, annual, scalars)),
        ("summary variables", lambda: variables(model, annual, scalars)),
        (f"histograms of {len(values)} variables", bin_again),
    ]
    all_threads = numba.config.NUMBA_NUM_THREADS
    engine_rows = []
    for name, step in steps:
        times = []
        for threads in (1, all_threads):
            numba.set_num_threads(threads)
            times.append(best_ns(step))
        engine_rows.append((name, *times))
    numba.set_num_threads(1)
    total = sum(c for _, c in phases)
    print(f"{N:,} paths, default config; the kernel on one thread.\n")
    print(f"Kernel: {plain:,.0f} ns a path ({probed:,.0f} with the probes); its random numbers alone (the floor): "
          f"{floor:,.0f} ns.\n")
    print("| kernel phase | cycles/path | share | ns/path (share of the plain kernel) |\n| --- | ---: | ---: | ---: |")
    for name, c in phases:
        print(f"| {name} | {c:,.0f} | {c / total:.1%} | {plain * c / total:,.0f} |")
    print(f"\n| engine, after the kernel | ns/path, 1 thread | ns/path of wall time, {all_threads} threads |\n"
          "| --- | ---: | ---: |")
    for name, one, every in engine_rows:
        print(f"| {name} | {one:,.0f} | {every:,.0f} |")
    print("\n| elementary function | ns |\n| --- | ---: |")
    for name, ns in elementary_rows():
        print(f"| {name} | {ns:.2f} |")
    print("\n| binning one variable, ns a value | grid lookup_grids chooses | grid uniform in the value |\n"
          "| --- | ---: | ---: |")
    for name, adaptive, uniform in tail_rows():
        print(f"| {name} | {adaptive:.1f} | {uniform:.1f} |")


if __name__ == "__main__":
    main()
