"""Speed of the simulator, side by side in one run on one machine.

    python benchmarks/run_benchmarks.py            # prints a markdown report
    python benchmarks/run_benchmarks.py --write    # and writes it to benchmarks/RESULTS.md
    python benchmarks/run_benchmarks.py --quick    # small sizes, to check the script

Measured, all on the default config at 4 steps a year with per-path rows not kept:
1. the numba kernel with all threads and one thread (kernel alone, and the whole engine with its
   streamed summaries);
2. the plain vectorised numpy implementation (benchmarks/numpy_model.py; its statistical agreement
   with the kernel is tested in tests/test_numpy_model.py);
3. the floor: drawing the kernel's count of random numbers with the kernel's own generator;
4. scaling in paths (10^4 .. 10^8) and threads (1, 2), each size in a fresh process: paths per
   second and peak resident memory;
5. cold (compile) and warm start of `python -m simulator run --paths 100000`;
6. the variance-reduction factor of antithetic variates for the headline figures;
7. with dask installed, the same run on a local Dask cluster of 1 and 2 worker processes, and the
   cost of a task (``--dask-only``: only this section).
Timings are medians of repeated runs after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def turn_times(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each of ``fns`` (name -> function) in each of ``repeats`` turns, all of them run in every turn:
    this VM's speed drifts by 20-40% within minutes, and a drift then slows every implementation alike, so
    their ratios hold."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def median_times(fns: dict, repeats: int) -> dict:
    """Median seconds of each of ``fns``, run in turns (``turn_times``)."""
    return {name: statistics.median(t) for name, t in turn_times(fns, repeats).items()}


def median_time(fn, repeats: int) -> float:
    return median_times({"": fn}, repeats)[""]


def floor_kernel():
    """A kernel that draws, per path, the same random numbers as the model, the way the kernel draws them
    (``kernel.LANES`` paths at a time: the parameter scores, two uniforms per scheduled raise, then per step
    the shocks and three uniforms), and nothing else: the floor."""
    import numpy as np
    from numba import njit, prange

    from simulator import kernel

    @njit(parallel=True, cache=True)
    def draw(seed, n, n_drawn, n_ev, steps, shocks, out):
        lanes = kernel.LANES
        n_tiles = (n + lanes - 1) // lanes
        for t in prange(n_tiles):
            first, m = t * lanes, min(lanes, n - t * lanes)
            states, bits = np.empty(lanes, np.uint64), np.empty(lanes, np.uint64)
            listed = np.empty(lanes, np.int64)
            signs, u, acc = np.ones(lanes), np.empty(lanes), np.zeros(lanes)
            z = np.empty((max(n_drawn, shocks), lanes))
            for i in range(m):
                states[i] = kernel.path_key(seed, first + i)
            for d in range(n_drawn):
                kernel.normals_lanes(states, bits, listed, signs, z, d, m)
                for i in range(m):
                    acc[i] += z[d, i]
            for _ in range(2 * n_ev):
                kernel.uniforms_lanes(states, signs, u, m)
                for i in range(m):
                    acc[i] += u[i]
            for _ in range(steps):
                for c in range(shocks):
                    kernel.normals_lanes(states, bits, listed, signs, z, c, m)
                    for i in range(m):
                        acc[i] += z[c, i]
                for _ in range(3):
                    kernel.uniforms_lanes(states, signs, u, m)
                    for i in range(m):
                        acc[i] += u[i]
            out[first:first + m] = acc[:m]  # keeps the draws from being optimised away

    return draw


def floor_shape(inputs) -> tuple[int, tuple, dict]:
    """The number of drawn parameters, the floor kernel's shape arguments, and the per-path counts of
    random numbers, for the model ``inputs``."""
    n_drawn = inputs.chol_param.shape[0]
    steps = inputs.n_years * inputs.spy
    n_seg, n_ch, n_ev = len(inputs.seg_launch), inputs.chol_shock.shape[0], len(inputs.ev_start)
    # Per path: parameter scores and two uniforms per scheduled raise; per step: channel shocks, bridge
    # averages, and three uniforms (two event counts, the contingent raise's draw, taken every step).
    counts = {"draws_per_path": {"normal": n_drawn + steps * (n_ch + n_seg), "uniform": 2 * n_ev + 3 * steps}}
    return n_drawn, (n_drawn, n_ev, steps, n_ch + n_seg), counts


def in_process(n_kernel: int, n_numpy: int, repeats: int) -> dict:
    import numba
    import numpy as np

    from simulator import kernel, load_config
    from simulator.built_model import Model
    from simulator.engine import Unkept, simulate

    from numpy_model import simulate_numpy

    cfg = load_config()
    model = Model.of(cfg)
    inputs = model.inputs
    n_drawn, shape, counts = floor_shape(inputs)

    # The kernel as a run that keeps no rows calls it (of the drawn parameters only the initial cash, which
    # the invariant checks read), and as a run that keeps them (every drawn parameter).
    streamed = Unkept(model, n_kernel)
    buffers = (np.empty((n_kernel, n_drawn)), *streamed.buffers[1:])
    draw = floor_kernel()
    out = np.empty(n_kernel)
    res = {"n_kernel": n_kernel, "n_numpy": n_numpy, **counts}
    simulate(cfg, 1000, 1, keep_paths="none")  # compile / load everything first
    draw(np.uint64(1), 10, *shape, out)
    simulate_numpy(inputs, 1000, 1)
    for threads in (numba.config.NUMBA_NUM_THREADS, 1):
        numba.set_num_threads(threads)
        fns = {"kernel": lambda: kernel.simulate_block(np.uint64(1), 0, streamed.inputs, *streamed.buffers),
               "kernel_all": lambda: kernel.simulate_block(np.uint64(1), 0, inputs, *buffers),
               "engine": lambda: simulate(cfg, n_kernel, 1, keep_paths="none"),
               "floor": lambda: draw(np.uint64(1), n_kernel, *shape, out)}
        if "numpy" not in res:  # once, in turns with the all-threads runs
            fns["numpy"] = lambda: simulate_numpy(inputs, n_numpy, 1)
        times = turn_times(fns, repeats)
        seconds = {name: statistics.median(t) for name, t in times.items()}
        res[f"threads_{threads}"] = {k: n_kernel / seconds[k] for k in ("kernel", "kernel_all", "engine", "floor")}
        # The kernel over the floor in each turn, timed back to back: their spread says how far to trust the ratio.
        res[f"threads_{threads}"]["floor_ratios"] = sorted(k / f for k, f in zip(times["kernel"], times["floor"]))
        if "numpy" in seconds:
            res["numpy"] = n_numpy / seconds["numpy"]
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    res.update(pilot_costs(model, n_kernel, repeats))
    return res


def pilot_costs(model, n: int, repeats: int) -> dict:
    """A streamed run's fixed cost, all threads: its histograms' edges and lookup grids, from the pilot (the
    summary variables of the first PILOT_PATHS paths, or of all ``n``), as the engine builds them; and binning
    paths after the pilot, per path. Medians of ``repeats``."""
    import numpy as np

    from simulator.engine import Unkept
    from simulator.samples import BLOCK_PATHS, PILOT_PATHS, Accumulator, bin_edges
    from simulator.summary import needs_bin_sums, variables

    names = model.variables
    with_sums = [needs_bin_sums(name) for name in names]
    run = Unkept(model, BLOCK_PATHS)
    size = min(n, PILOT_PATHS)
    pilot = np.concatenate([variables(model, *run.run(1, lo, min(lo + BLOCK_PATHS, size))[1:])
                            for lo in range(0, size, BLOCK_PATHS)], axis=1)
    fixed, binning = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        acc = Accumulator(names, *bin_edges(pilot), with_sums)
        built = time.perf_counter()
        fixed.append(built - start)
        acc.add(pilot, 0)
        again = time.perf_counter()  # the same values as the next paths: binning with the grids in use
        acc.add(pilot, size)
        binning.append((time.perf_counter() - again) / size)
    return {"pilot_seconds": statistics.median(fixed), "binning_per_path": statistics.median(binning)}


SCALE_SNIPPET = """
import sys, time, json, numba
from simulator import load_config
from simulator.engine import simulate
n, threads = int(sys.argv[1]), int(sys.argv[2])
numba.set_num_threads(threads)
cfg = load_config()
simulate(cfg, 1000, 1, keep_paths="none")
start = time.perf_counter()
sim = simulate(cfg, n, 7, keep_paths="none")
seconds = time.perf_counter() - start
# VmHWM: this process's peak resident memory (ru_maxrss would carry the parent's over fork/exec).
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"n": n, "threads": threads, "seconds": seconds, "peak_rss_mib": peak / 1024}))
"""


KEPT_SNIPPET = """
import sys, time, json, tempfile
from pathlib import Path
from simulator.cli import main
with tempfile.TemporaryDirectory() as tmp:
    main(["run", "-q", "--paths", "1000", "--out", str(Path(tmp) / "warm-up")], standalone_mode=False)
    start = time.perf_counter()
    main(["run", "-q", "--paths", sys.argv[1], "--out", str(Path(tmp) / "run")], standalone_mode=False)
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in (Path(tmp) / "run").rglob("*") if f.is_file())
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"n": int(sys.argv[1]), "seconds": seconds, "peak_rss_mib": peak / 1024, "files_mib": size / 2**20}))
"""


def kept_rows_run(n: int) -> dict:
    """``simulator run --paths n`` (every row kept, files written) in a fresh process, after a warm-up run."""
    out = subprocess.run([sys.executable, "-c", KEPT_SNIPPET, str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scaling(sizes: list[int], big: int | None) -> list[dict]:
    rows = []
    runs = [(n, t) for n in sizes for t in (1, 2)] + ([(big, 2)] if big else [])
    for n, threads in runs:
        out = subprocess.run([sys.executable, "-c", SCALE_SNIPPET, str(n), str(threads)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  scaling: {rows[-1]}", file=sys.stderr)
    return rows


def start_times(repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba-cache")}
        command = [sys.executable, "-m", "simulator", "run", "--paths", "100000", "-q", "--force",
                   "--out", str(Path(tmp) / "run")]

        def once():
            start = time.perf_counter()
            subprocess.run(command, env=env, capture_output=True, check=True)
            return time.perf_counter() - start

        cold = once()  # empty numba cache: compiles every kernel
        warm = statistics.median(once() for _ in range(repeats))
    return {"cold": cold, "warm": warm}


VRF_METRICS = ("p_fcf_positive_2030", "p_shortfall_by_2030", "revenue_2030_q50", "fcf_2030_q50",
               "funding_gap_q95", "funding_gap_es95", "cfar95_2030_vs_expected")


def variance_reduction(n: int) -> dict:
    """Standard error of the headline figures, plain vs antithetic, same path count: factor = (se_plain / se_anti)^2."""
    from simulator import load_config, run

    plain = run(load_config(), n, seed=1).summary.set_index("metric")
    anti = run(load_config(overrides=["simulation.antithetic=true"]), n, seed=1).summary.set_index("metric")
    return {m: (plain.loc[m, "stderr"], anti.loc[m, "stderr"]) for m in VRF_METRICS} | {"n": n}


def cpu_description(cpuinfo: str | None = None) -> str:
    """The CPU's model name, family and model, widest vector extension and L2 cache, from /proc/cpuinfo and
    sysfs (``cpuinfo``: that file's text, for tests). A VM's model name alone ("AMD EPYC") can stand for CPUs
    whose kernel speed and floor ratio differ widely (RESULTS.md, "Machine"), so the tables name them."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        return platform.processor() or "unknown"
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor's
    flags = set(fields.get("flags", "").split())
    vectors = next((name for name, flag in (("AVX-512", "avx512f"), ("AVX2", "avx2"), ("AVX", "avx"))
                    if flag in flags), "no AVX")
    parts = [fields.get("model name", platform.processor() or "unknown")]
    if "cpu family" in fields:
        parts.append(f"family {fields['cpu family']} model {fields.get('model', '?')}")
    parts.append(vectors)
    try:
        l2 = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip()
        parts.append(f"L2 {l2} a core")
    except OSError:
        pass
    return ", ".join(parts)


def machine() -> dict:
    import llvmlite
    import numba
    import numpy

    return {"cpu": cpu_description(), "cores": os.cpu_count(), "threads": numba.config.NUMBA_NUM_THREADS,
            "python": platform.python_version(), "numpy": numpy.__version__, "numba": numba.__version__,
            "llvmlite": llvmlite.__version__, "os": platform.platform()}


def spread(ratios: list[float]) -> str:
    """The per-turn ratios' median and range, as the report gives them."""
    return (f"per turn: median {statistics.median(ratios):.2f}, {ratios[0]:.2f}-{ratios[-1]:.2f} "
            f"over {len(ratios)} turns")


def short_run_limit(res: dict, k: dict) -> str:
    """Where the in-process run misses 10^6 paths/s: the most it could make, its paths at the kernel's own
    rate and binned at ``pilot_costs``' rate, plus the pilot's fixed cost, and nothing else (no summary variables,
    event counts or checks)."""
    n = res["n_kernel"]
    kernel, binning = n / k["kernel"], n * res["binning_per_path"]
    most = n / (kernel + binning + res["pilot_seconds"])
    return "" if k["engine"] >= 1e6 else (f" (at most {most:,.0f}: the kernel's {kernel:.2f} s, binning's "
                                          f"{binning:.2f} s and the pilot's {res['pilot_seconds']:.2f} s)")


def _target_rows(res: dict, scale: list[dict], start: dict, all_t: str) -> list[str]:
    """The speed and memory targets, each checked against this run's measurements."""
    k, k1 = res[all_t], res["threads_1"]
    biggest = max(scale, key=lambda r: r["n"])
    run = max(scale, key=lambda r: (r["threads"], r["n"]))  # the largest whole run with all threads
    whole = run["n"] / run["seconds"]
    # Met only if the ratio of the medians and the median of the turns' ratios both are, on both thread counts:
    # a turn that disturbs the floor more than the kernel flatters the first.
    floor_ratios = [r["floor"] / r["kernel"] for r in (k, k1)] + [statistics.median(r["floor_ratios"]) for r in (k, k1)]

    def yes(ok: bool) -> str:
        return "yes" if ok else "no"

    checks = [
        # Each size's own verdict: a short run's figure carries the run's fixed costs (the histograms' pilot).
        ("≥ 1,000,000 paths/s with all threads", f"kernel {k['kernel']:,.0f}; a whole run of {run['n']:,} paths "
         f"{whole:,.0f}; the engine in-process, {res['n_kernel']:,} paths {k['engine']:,.0f}",
         f"kernel {yes(k['kernel'] >= 1e6)}; {run['n']:,} paths {yes(whole >= 1e6)}; "
         f"{res['n_kernel']:,} paths {yes(k['engine'] >= 1e6)}{short_run_limit(res, k)}"),
        ("≥ 6x the numpy implementation", f"kernel {k['kernel'] / res['numpy']:.1f}x, engine "
         f"{k['engine'] / res['numpy']:.1f}x", f"kernel {yes(k['kernel'] >= 6 * res['numpy'])}, "
         f"engine {yes(k['engine'] >= 6 * res['numpy'])}"),
        ("≤ 2x the random-number floor's time", f"all threads {k['floor'] / k['kernel']:.2f}x "
         f"({spread(k['floor_ratios'])}); 1 thread {k1['floor'] / k1['kernel']:.2f}x ({spread(k1['floor_ratios'])})",
         max(floor_ratios) <= 2),
        (f"peak memory < 1.5 GiB for {biggest['n']:,} paths", f"{biggest['peak_rss_mib']:,.0f} MiB",
         biggest["peak_rss_mib"] < 1536),
        ("warm `run --paths 100000` < 3 s", f"{start['warm']:.2f} s (cold {start['cold']:.1f} s)", start["warm"] < 3),
    ]
    return [f"| {what} | {measured} | {ok if isinstance(ok, str) else yes(ok)} |"
            for what, measured, ok in checks]


def report(m: dict, res: dict, scale: list[dict], start: dict, kept: dict, vrf: dict, command: str) -> str:
    all_t = f"threads_{m['threads']}"
    k2, k1 = res[all_t], res["threads_1"]
    lines = [
        "# Benchmark results", "",
        f"Command: `{command}`  ", f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
        f"Machine: {m['cpu']}, {m['cores']} cores; numba threads {m['threads']}; Python {m['python']}, "
        f"numpy {m['numpy']}, numba {m['numba']}, llvmlite {m['llvmlite']}; {m['os']}.", "",
        "Default config, 4 steps a year, per-path rows not kept. Paths per second, medians; the kernel, "
        "engine, floor and numpy runs are timed in turns, so a drift in the machine's speed leaves their "
        "ratios alone.", "",
        "## Side by side", "",
        "| implementation | paths/s, all threads | paths/s, 1 thread |", "| --- | ---: | ---: |",
        f"| numba kernel alone | {k2['kernel']:,.0f} | {k1['kernel']:,.0f} |",
        f"| numba kernel alone, writing every drawn parameter (as for kept rows) | {k2['kernel_all']:,.0f} | "
        f"{k1['kernel_all']:,.0f} |",
        f"| numba engine (kernel + streamed summaries) | {k2['engine']:,.0f} | {k1['engine']:,.0f} |",
        f"| plain numpy (benchmarks/numpy_model.py) | {res['numpy']:,.0f} | – |",
        f"| floor: the kernel's random numbers only | {k2['floor']:,.0f} | {k1['floor']:,.0f} |", "",
        f"Paths per run: {res['n_kernel']:,} (numba, floor), {res['n_numpy']:,} (numpy). Random numbers "
        f"per path: {res['draws_per_path']['normal']} normals and {res['draws_per_path']['uniform']} uniforms, "
        "drawn as the kernel draws them. The kernel alone is called as a run that keeps no rows calls it: its "
        "yearly and path outputs, and of the drawn parameters only the initial cash (the invariant checks read "
        "it). `python benchmarks/breakdown.py` shows where the rest of a path's time goes.", "",
        "| ratio | value |", "| --- | ---: |",
        f"| engine / numpy, all threads | {k2['engine'] / res['numpy']:.1f}x |",
        f"| kernel / numpy, all threads | {k2['kernel'] / res['numpy']:.1f}x |",
        f"| kernel time / floor time, all threads | {k2['floor'] / k2['kernel']:.2f} ({spread(k2['floor_ratios'])}) |",
        f"| kernel time / floor time, 1 thread | {k1['floor'] / k1['kernel']:.2f} ({spread(k1['floor_ratios'])}) |",
        f"| thread scaling of the kernel (all / 1) | {k2['kernel'] / k1['kernel']:.2f} |",
        f"| a streamed run's fixed cost, all threads: the histograms' edges and grids from the pilot "
        f"| {res['pilot_seconds']:.3f} s |",
        f"| binning a path's summary variables, all threads | {res['binning_per_path'] * 1e9:.0f} ns |", "",
        "## Targets (issue: default config, 4 steps a year, rows not kept)", "",
        "| target | measured | met? |", "| --- | --- | --- |",
        *_target_rows(res, scale, start, all_t), "",
        "## Scaling (fresh process per row; peak resident memory of the whole process)", "",
        "| paths | threads | seconds | paths/s | peak RSS (MiB) |", "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in scale:
        lines.append(f"| {r['n']:,} | {r['threads']} | {r['seconds']:.2f} | {r['n'] / r['seconds']:,.0f} | "
                     f"{r['peak_rss_mib']:,.0f} |")
    lines += ["", "## A run that keeps every row (the default up to 1,000,000 paths)", "",
              f"`simulator run --paths {kept['n']}`, all threads, in a fresh process after a warm-up run (so without "
              f"the start-up): {kept['seconds']:.2f} s ({kept['n'] / kept['seconds']:,.0f} paths/s) for the "
              f"simulation, the exact summaries and {kept['files_mib']:,.0f} MiB of Parquet written; peak RSS "
              f"{kept['peak_rss_mib']:,.0f} MiB.",
              "", "## Start-up of `python -m simulator run --paths 100000`", "",
              f"Cold (empty numba cache, compiles the kernels): {start['cold']:.1f} s. "
              f"Warm (median of 3): {start['warm']:.2f} s.", "",
              "## Variance reduction: antithetic variates (`--antithetic`)", "",
              f"Same config, seed and path count ({vrf['n']:,}); the factor is (plain stderr / antithetic stderr)^2, "
              "the number of plain paths one antithetic path is worth. Standard errors of the antithetic run come "
              "from the pairs.", "",
              "| metric | stderr, plain | stderr, antithetic | variance-reduction factor |",
              "| --- | ---: | ---: | ---: |"]
    for metric in VRF_METRICS:
        plain, anti = vrf[metric]
        lines.append(f"| {metric} | {plain:.3g} | {anti:.3g} | {(plain / anti) ** 2:.2f} |")
    return "\n".join(lines + [""])


def dask_section(n: int, repeats: int) -> str:
    """Throughput on a local Dask cluster of 1 and 2 worker processes against the single-process run (all
    threads), same paths, rows not kept; and the cost of a task. Empty when dask is not installed."""
    try:
        import distributed
    except ImportError:
        return ""
    from simulator import distributed as dist
    from simulator import load_config
    from simulator.engine import simulate

    cfg = load_config()
    rows = [("single process, all threads", median_time(lambda: simulate(cfg, n, 1, keep_paths="none"), repeats),
             float("nan"))]
    noop = {}
    for workers in (1, 2):
        start = time.perf_counter()
        with dist.connect(workers=workers) as client:
            started = time.perf_counter() - start
            threads = dist.local_threads(workers)
            dist.simulate(cfg, 2 * dist.BLOCK_PATHS, 1, client, threads=threads, keep_paths="none")  # warm-up
            seconds = median_time(lambda: dist.simulate(cfg, n, 1, client, threads=threads, keep_paths="none"),
                                  repeats)
            how = f"Dask, {workers} worker process{'es' if workers > 1 else ''} x {threads} numba thread"
            rows.append((how + ("s" if threads > 1 else ""), seconds, started))
            if workers == 1:
                def one():
                    client.submit(int, 0, pure=False).result()
                noop["latency"] = median_time(one, 50)
                batch = 500
                start = time.perf_counter()
                distributed.wait(client.map(int, range(batch), pure=False))
                noop["throughput"] = (time.perf_counter() - start) / batch
    blocks = len(dist.blocks(0, n))
    lines = ["## Dask cluster (local), `simulator run --workers N`", "",
             f"{n:,} paths ({blocks} tasks of {dist.BLOCK_PATHS:,} paths), rows not kept, medians of {repeats}; "
             "the results are bit-identical to the single process's (tests/test_distributed.py).", "",
             "| how | seconds | paths/s | cluster start (s) |", "| --- | ---: | ---: | ---: |"]
    for how, seconds, started in rows:
        lines.append(f"| {how} | {seconds:.2f} | {n / seconds:,.0f} | {started:.1f} |".replace("| nan |", "| – |"))
    lines += ["", f"Cost of a task: {noop['latency'] * 1e3:.1f} ms round trip for one empty task, "
              f"{noop['throughput'] * 1e3:.2f} ms each for {500} submitted at once; per simulation block, "
              f"{(rows[1][1] - rows[0][1]) / blocks * 1e3:.1f} ms more on 1 worker than in the single process "
              "(transfer of the kept rows or histogram partials, the driver's merge, the pilot's wait).", ""]
    return "\n".join(lines)


NOTES_MARKER = "<!-- Notes below are written by hand; run_benchmarks.py --write keeps them. -->"


def write_results(text: str, path: Path = HERE / "RESULTS.md") -> None:
    """Replace the generated tables of ``path`` with ``text``; the hand-written notes from NOTES_MARKER on
    (method, tried and dropped) stay as they are."""
    old = path.read_text() if path.exists() else ""
    notes = old[old.index(NOTES_MARKER):] if NOTES_MARKER in old else NOTES_MARKER + "\n"
    path.write_text(text + "\n" + notes)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script works")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    parser.add_argument("--dask-only", action="store_true", help="print only the Dask cluster section")
    opts = parser.parse_args()
    if opts.dask_only:
        print(dask_section(200_000 if opts.quick else 2_000_000, 3))
        return
    if opts.quick:
        res = in_process(20_000, 10_000, 3)
        scale, start = scaling([10_000], None), {"cold": float("nan"), "warm": float("nan")}
        kept = kept_rows_run(20_000)
        vrf = variance_reduction(20_000)
    else:
        res = in_process(1_000_000, 200_000, 9)
        scale = scaling([10_000, 100_000, 1_000_000, 10_000_000], 100_000_000)
        start = start_times(3)
        kept = kept_rows_run(1_000_000)
        vrf = variance_reduction(200_000)
    command = ("python benchmarks/run_benchmarks.py" + (" --quick" if opts.quick else "")
               + (" --write" if opts.write else ""))
    text = report(machine(), res, scale, start, kept, vrf, command)
    text += "\n" + dask_section(200_000 if opts.quick else 2_000_000, 3)
    print(text)
    if opts.write:
        write_results(text)


if __name__ == "__main__":
    main()
