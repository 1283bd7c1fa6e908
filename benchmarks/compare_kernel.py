"""This checkout's kernel against another git revision's, timed in turns with the random-number floor,
default config: ns a path, each kernel's time over the floor's, and whether their outputs are
bit-identical. In turns, a drift in the machine's speed moves all three alike; but where a process's code
and arrays land moves a kernel by a few percent on this VM, so the comparison is made in several fresh
processes (``--runs``) and their medians are printed too.

    python benchmarks/compare_kernel.py REV [--runs 5] [--threads 1] [--paths 1000000] [--repeats 11] [--streamed]

Both kernels write every drawn parameter, as for kept rows; ``--streamed`` also times this checkout's kernel
as a run that keeps no rows calls it (``engine.Unkept``: of the drawn parameters only the initial cash).

The other revision's ``simulator`` package is taken with ``git archive`` into a folder under the system's
temporary directory and imported under another name (the package's imports are relative); its kernel
compiles there on the first run (about a minute) and is loaded from numba's cache after. Each revision
builds its own inputs from its own default config.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import simulator  # noqa: E402
from simulator.model import build_inputs  # noqa: E402

from run_benchmarks import floor_kernel, floor_shape, median_times  # noqa: E402  (this folder is on sys.path)


def commit_of(rev: str) -> str:
    """The full hash of the commit ``rev`` names; exits with a message if it names none."""
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=ROOT,
                           capture_output=True, text=True)
    if found.returncode:
        raise SystemExit(f"compare_kernel: {rev!r} is not a commit of {ROOT}")
    return found.stdout.strip()


def package_at(sha: str):
    """The ``simulator`` package of commit ``sha``, imported as ``simulator_<sha[:12]>``."""
    name = f"simulator_{sha[:12]}"
    folder = Path(tempfile.gettempdir()) / "simulator_compare" / sha
    if not (folder / name).exists():
        archive = subprocess.run(["git", "archive", sha, "simulator"], cwd=ROOT, capture_output=True, check=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder / "partial", filter="data")
        (folder / "partial" / "simulator").rename(folder / name)  # whole, or not there
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def runner(package, n: int):
    """(a function that runs ``package``'s kernel on paths 0 .. n - 1, its outputs)."""
    kernel = importlib.import_module(f"{package.__name__}.kernel")
    inputs = importlib.import_module(f"{package.__name__}.model").build_inputs(package.load_config())
    # Revisions before the kernel took one tuple of inputs took its fields one by one (``kernel_args``).
    args = inputs.kernel_args() if hasattr(inputs, "kernel_args") else (inputs,)
    out = (np.empty((n, inputs.chol_param.shape[0])), np.empty((n, len(kernel.ANNUAL_VARS), inputs.n_years)),
           np.empty((n, len(kernel.SCALAR_VARS))))
    return (lambda: kernel.simulate_block(np.uint64(1), 0, *args, *out)), out


def streamed_runner(n: int):
    """A function that runs this checkout's kernel on paths 0 .. n - 1 as a run that keeps no rows does."""
    from simulator.built_model import Model
    from simulator.engine import Unkept

    unkept = Unkept(Model.of(simulator.load_config()), n)
    return lambda: simulator.kernel.simulate_block(np.uint64(1), 0, unkept.inputs, *unkept.buffers)


def compare(sha: str, rev: str, threads: int, paths: int, repeats: int,
            streamed: bool) -> tuple[dict[str, float], bool]:
    """(median ns a path of commit ``sha``'s kernel, named ``rev``, this checkout's, the floor's and with
    ``streamed`` this checkout's as a streamed run calls it, in this process; are the two kernels' outputs
    bit-identical?)."""
    runs = {rev: runner(package_at(sha), paths), "this checkout": runner(simulator, paths)}
    _, shape, _ = floor_shape(build_inputs(simulator.load_config()))
    draw, drawn = floor_kernel(), np.empty(paths)
    fns = {name: fn for name, (fn, _) in runs.items()}
    fns["floor"] = lambda: draw(np.uint64(1), paths, *shape, drawn)
    if streamed:
        fns["this checkout, streamed"] = streamed_runner(paths)
    for fn in fns.values():  # compile or load, and fill the outputs
        fn()
    numba.set_num_threads(threads)
    seconds = median_times(fns, repeats)
    (_, a), (_, b) = runs.values()
    same = all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))
    return {name: t / paths * 1e9 for name, t in seconds.items()}, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the git revision to compare with (a commit, tag or branch)")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes, each timing all three")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--paths", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=11, help="timings of each, in turns, in a process")
    parser.add_argument("--streamed", action="store_true",
                        help="also this checkout's kernel as a run that keeps no rows calls it")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child process: one run
    options = parser.parse_args()
    sha = commit_of(options.rev)
    if options.one:
        ns, same = compare(sha, options.rev, options.threads, options.paths, options.repeats, options.streamed)
        print(json.dumps({"ns": ns, "same": same}))
        return

    child = [sys.executable, __file__, options.rev, "--one", "--threads", str(options.threads),
             "--paths", str(options.paths), "--repeats", str(options.repeats)] + ["--streamed"] * options.streamed
    results = [json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
               for _ in range(options.runs)]
    names = list(results[0]["ns"])
    kernels = [name for name in names if name != "floor"]
    print(f"{options.paths:,} paths, {options.threads} thread(s); per process the median of {options.repeats} "
          f"timings in turns; outputs {'bit-identical' if all(r['same'] for r in results) else 'differ'}\n")
    print("| process | " + " | ".join(f"{name}, ns a path" for name in names) + " | "
          + " | ".join(f"{name} / floor" for name in kernels) + " |")
    print("| ---: |" + " ---: |" * (len(names) + len(kernels)))
    rows = [[r["ns"][name] for name in names] + [r["ns"][name] / r["ns"]["floor"] for name in kernels]
            for r in results]

    def line(label, row):
        times, ratios = row[:len(names)], row[len(names):]
        print(f"| {label} | " + " | ".join(f"{x:,.0f}" for x in times) + " | "
              + " | ".join(f"{x:.3f}" for x in ratios) + " |")

    for k, row in enumerate(rows, 1):
        line(k, row)
    line("median", [statistics.median(column) for column in zip(*rows)])


if __name__ == "__main__":
    main()
