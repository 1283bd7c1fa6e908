"""Where a path's time goes: the kernel with one piece of work removed at a time, and the engine's steps
after the kernel, one thread, default config; and the kernel's branch-free exp against glibc's.

    python benchmarks/breakdown.py

Each kernel variant is a copy of simulator/kernel.py with one source substitution (a removed piece of
work) compiled in a temporary module, so the saving is measured, not estimated. Minimum of repeated runs
(the least disturbed by other processes), nanoseconds per path.
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
from simulator.model import build_inputs, drawn_parameters  # noqa: E402
from simulator.samples import Accumulator, pilot_edges  # noqa: E402
from simulator.summary import event_counts, variable_names, variables  # noqa: E402

from run_benchmarks import floor_kernel, floor_shape  # noqa: E402  (this folder is on sys.path)

N = 1 << 16

# name -> [(source text, replacement), ...]: the piece of work each variant leaves out.
VARIANTS = {
    "step random numbers": [("normals_lanes(states, bits, signs, eps, c, m)", "eps[c, :m] = 0.01 * c"),
                            ("uniforms_lanes(states, signs, lane[L_U_", "lane_fill(0.5, lane[L_U_")],
    "Poisson counts": [("poisson_lanes(lane, L_U_COMP", "lane_fill(0.0, lane[L_N_COMP], m)  # ("),
                       ("poisson_lanes(lane, L_U_SUPPLY", "lane_fill(0.0, lane[L_N_SUPPLY], m)  # (")],
    "elasticity log per step": [("math.log(lane[L_RATIO0, i])", "(lane[L_RATIO0, i] - 1.0)")],
    "scheduled raises": [("for e in range(n_ev):\n                if ev_state", "for e in range(0):\n                if ev_state")],
    "segment growth expm1": [("growth = expm1_lanes(d)", "growth = d")],
    "cost exps": [("exp_lanes(mid_p + 0.5", "(1.0 + mid_p + 0.5"), ("exp_lanes(mid_p + theta", "(1.0 + mid_p + theta")],
    "parameter table lookups": [("interp_table(tables[k], zc[d, i], z_min, z_step)",
                                 "tables[k, tables.shape[1] // 2] * (1.0 + 1e-3 * zc[d, i])")],
    "parameter normal scores": [("normals_lanes(states, bits, signs, z, d, m)", "z[d, :m] = 0.1")],
}
# Helper the variants above call in place of a removed piece.
HELPERS = """

@njit(inline="always", **_jit)
def lane_fill(value, out, m):
    out[:m] = value
"""


def best_ns(fn, repeats: int = 9) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) / N * 1e9


def kernel_variant(tmp: Path, name: str, source: str):
    path = tmp / f"variant_{abs(hash(name))}.py"
    path.write_text(source.replace("cache=True", "cache=False") + HELPERS)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@numba.njit(cache=True)
def exp_lanes(x, out):
    for i in range(x.shape[0]):
        out[i] = kernel.exp_lanes(x[i])


@numba.njit(cache=True)
def exp_libm(x, out):
    for i in range(x.shape[0]):
        out[i] = math.exp(x[i])


def exp_rows() -> list[tuple[str, float]]:
    x = np.random.default_rng(1).normal(0.0, 0.5, N)
    out, ref = np.empty(N), np.empty(N)
    exp_libm(x, ref)
    exp_lanes(x, out)
    assert np.max(np.abs(out / ref - 1.0)) < 1e-13
    return [("exp, glibc, in a loop (ns per call)", best_ns(lambda: exp_libm(x, ref))),
            ("kernel.exp_lanes, in a loop that compiles to SIMD (ns per call)", best_ns(lambda: exp_lanes(x, out)))]


def main():
    numba.set_num_threads(1)
    cfg = load_config()
    inputs, params = build_inputs(cfg), drawn_parameters(cfg)
    args = inputs.kernel_args()
    out = (np.empty((N, len(params))), np.empty((N, len(kernel.ANNUAL_VARS), inputs.n_years)),
           np.empty((N, len(kernel.SCALAR_VARS))))
    source = Path(kernel.__file__).read_text()

    def time_kernel(module) -> float:
        module.simulate_block(np.uint64(1), 0, *args, *out)  # compile
        return best_ns(lambda: module.simulate_block(np.uint64(1), 0, *args, *out))

    whole = time_kernel(kernel)
    draw, (_, shape, _), last = floor_kernel(), floor_shape(inputs), np.empty(N)
    draw(np.uint64(1), 10, *shape, last)
    rows = [("kernel, whole", whole),
            ("the kernel's random numbers alone (the floor)", best_ns(lambda: draw(np.uint64(1), N, *shape, last)))]
    with tempfile.TemporaryDirectory() as tmp:
        for name, substitutions in VARIANTS.items():
            variant = source
            for old, new in substitutions:
                if old not in variant:
                    raise SystemExit(f"variant {name!r}: {old!r} is no longer in kernel.py; update VARIANTS")
                variant = variant.replace(old, new)
            rows.append((f"kernel: {name}", whole - time_kernel(kernel_variant(Path(tmp), name, variant))))
    theta, annual, scalars = out
    initial_cash = engine._initial_cash(cfg, params)
    values = variables(cfg, annual, scalars)
    acc = Accumulator(variable_names(cfg), pilot_edges(values))

    def bin_again():
        acc.next_id = 0
        acc.add(values, 0)

    rows += [
        ("engine: invariant checks", best_ns(lambda: engine.check_invariants(theta, annual, scalars, initial_cash, 0))),
        ("engine: event counts", best_ns(lambda: event_counts(cfg, inputs.spy, annual, scalars))),
        ("engine: summary variables", best_ns(lambda: variables(cfg, annual, scalars))),
        (f"engine: histograms of {len(values)} variables", best_ns(bin_again)),
    ]
    print(f"{N:,} paths, 1 thread, ns per path (\"kernel:\" rows: the time the piece costs)\n")
    print("| work | ns/path | share of the kernel |\n| --- | ---: | ---: |")
    for name, ns in rows:
        print(f"| {name} | {ns:,.0f} | {ns / whole:.0%} |")
    print("\n| elementary function | ns |\n| --- | ---: |")
    for name, ns in exp_rows():
        print(f"| {name} | {ns:.2f} |")


if __name__ == "__main__":
    main()
