"""What a run updated on reported figures (``--actuals``) costs against the same run without them.

    python benchmarks/posterior_cost.py --paths 1000000 --turns 3

Both runs are the base config with no per-path rows kept, timed in turns (prior, posterior, prior, ...) in one
process after a warm-up run of each, so that a drift in the machine's speed leaves the ratio alone. Prints the
median wall time of each, their ratio per turn and its median, and where a posterior run's extra time goes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import simulator
from simulator.config import PACKAGED_CONFIGS

ACTUALS = PACKAGED_CONFIGS / "actuals" / "2026h1.toml"


def timed(cfg, n_paths: int, actuals) -> float:
    start = time.perf_counter()
    simulator.run(cfg, n_paths, keep_paths="none", actuals=actuals)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1_000_000)
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    cfg = simulator.load_config()
    for actuals in (None, ACTUALS):  # compile and warm both
        simulator.run(cfg, 20_000, keep_paths="none", actuals=actuals)
    prior, posterior = [], []
    for _ in range(args.turns):
        prior.append(timed(cfg, args.paths, None))
        posterior.append(timed(cfg, args.paths, ACTUALS))
    ratios = [b / a for a, b in zip(prior, posterior)]
    print(f"{args.paths:,} paths, base, rows not kept, {args.turns} turns")
    print(f"prior run      median {statistics.median(prior):.2f} s  ({', '.join(f'{t:.2f}' for t in prior)})")
    print(f"posterior run  median {statistics.median(posterior):.2f} s  ({', '.join(f'{t:.2f}' for t in posterior)})")
    print(f"posterior / prior: median {statistics.median(ratios):.2f} "
          f"({min(ratios):.2f}-{max(ratios):.2f} over the turns)")


if __name__ == "__main__":
    main()
