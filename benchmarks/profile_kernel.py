"""Where the kernel's time goes, instruction by instruction: a sampling profile of ``simulate_tiles`` (Linux
perf's cpu-clock event, which works where a VM hides the hardware counters), summed by basic block of its
machine code, default config, one thread.

    python benchmarks/profile_kernel.py [--seconds 12] [--top 25] [--show 3]

Prints the hottest blocks (share of the kernel's samples, instructions, AVX-512 instructions, divisions,
calls) and the disassembly of the first ``--show`` with each instruction's samples; then where the samples
outside the kernel's code fell (libm, the ziggurat's rejections). A sample lands on the instruction after
the one that waited, often a load's user. Needs ``perf`` and ``objdump`` on PATH and permission to profile
one's own processes (kernel.perf_event_paranoid <= 2). The kernel is compiled afresh in a temporary numba
cache (about a minute) so that its code can be found in memory.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

TMP = Path(tempfile.mkdtemp(prefix="profile_kernel_"))
os.environ["NUMBA_CACHE_DIR"] = str(TMP / "numba")  # a fresh compile keeps the code's library in memory
os.environ["NUMBA_NUM_THREADS"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from simulator import kernel, load_config  # noqa: E402
from simulator.model import build_inputs  # noqa: E402

N = 1 << 18
INSTRUCTION = re.compile(r"\s+([0-9a-f]+):\t(?:[0-9a-f]{2} )+\s*\t(.*)")


def kernel_code() -> tuple[int, bytes, Callable[[], None]]:
    """(address of simulate_tiles' machine code, the bytes from there to the end of its mapping, at most
    1 MiB; a function that runs the kernel once on N paths)."""
    inputs = build_inputs(load_config())
    out = (np.empty((N, inputs.chol_param.shape[0])), np.empty((N, len(kernel.ANNUAL_VARS), inputs.n_years)),
           np.empty((N, len(kernel.SCALAR_VARS))))

    def run():
        kernel.simulate_block(np.uint64(1), 0, inputs, *out)

    run()
    compiled = kernel.simulate_tiles.overloads[kernel.simulate_tiles.signatures[0]]
    address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
    for line in open("/proc/self/maps"):
        low, high = (int(x, 16) for x in line.split()[0].split("-"))
        if low <= address < high:
            return address, ctypes.string_at(address, min(high - address, 1 << 20)), run
    raise SystemExit("simulate_tiles' code is not in a mapping of this process")


def sample(run, seconds: float) -> list[tuple[int, str]]:
    """(address, DSO) of every cpu-clock sample of this process while ``run`` repeats for ``seconds``."""
    data = TMP / "perf.data"
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "4000", "-p", str(os.getpid()),
                             "-o", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # perf attaches
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        run()
    perf.send_signal(signal.SIGINT)
    perf.wait()  # its exit status after SIGINT is not 0
    if not data.exists():
        raise SystemExit(f"perf record failed: {perf.stderr.read().decode()[-500:]}")
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,dso"], capture_output=True, text=True)
    samples = []
    for line in script.stdout.splitlines():
        parts = line.split()
        if parts:
            samples.append((int(parts[0], 16), " ".join(parts[1:]).strip("()")))
    return samples


def basic_blocks(code: bytes) -> list[list[tuple[int, str]]]:
    """The code's instructions (offset, text), cut after every jump and return."""
    (TMP / "tile.bin").write_bytes(code)
    listing = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64", str(TMP / "tile.bin")],
                             capture_output=True, text=True, check=True).stdout
    blocks, block = [], []
    for line in listing.splitlines():
        match = INSTRUCTION.match(line)
        if match:
            block.append((int(match.group(1), 16), match.group(2).strip()))
            if block[-1][1].startswith(("j", "ret")):
                blocks.append(block)
                block = []
    return blocks + [block] if block else blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="how long to sample the kernel")
    parser.add_argument("--top", type=int, default=25, help="blocks to list")
    parser.add_argument("--show", type=int, default=3, help="blocks to disassemble")
    options = parser.parse_args()

    address, code, run = kernel_code()
    samples = sample(run, options.seconds)
    inside = collections.Counter(ip - address for ip, _ in samples if address <= ip < address + len(code))
    outside = collections.Counter(dso for ip, dso in samples if not address <= ip < address + len(code))
    total = sum(inside.values())
    if not total:
        raise SystemExit("no samples in the kernel's code")
    blocks = sorted(basic_blocks(code), key=lambda b: -sum(inside[offset] for offset, _ in b))

    print(f"{total:,} samples in simulate_tiles ({len(samples):,} in the process while the kernel ran)\n")
    print("| share | offset | instructions | AVX-512 | divisions | calls |\n"
          "| ---: | ---: | ---: | ---: | ---: | ---: |")
    for block in blocks[:options.top]:
        text = [t for _, t in block]
        print(f"| {sum(inside[o] for o, _ in block) / total:.1%} | {block[0][0]:#x} | {len(block)} | "
              f"{sum('zmm' in t for t in text)} | {sum('div' in t.split()[0] for t in text)} | "
              f"{sum(t.startswith('call') for t in text)} |")
    for block in blocks[:options.show]:
        print(f"\nblock at {block[0][0]:#x} (samples, offset, instruction):")
        for offset, text in block:
            print(f"{inside[offset]:6d} {offset:#8x}  {text}")
    print("\nsamples outside simulate_tiles, by object (relative to the kernel's):")
    for dso, count in outside.most_common(8):
        if count >= total / 1000:
            name = "other jitted code (normal_rejected, simulate_block)" if "/perf-" in dso else dso
            print(f"  {count / total:7.1%}  {name}")


if __name__ == "__main__":
    main()
