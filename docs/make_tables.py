"""Print the tables of docs/model.md as markdown: plan vs published, the scenarios, the Q1 2026 backtest.

    python docs/make_tables.py                      # all three (about 15 s)
    python docs/make_tables.py --only backtest --backtest-paths 20000
    python docs/make_tables.py --update docs/model.md   # replace the tables there in place

Each table starts with a marker line ``<!-- NAME: ... -->``; ``--update`` replaces, in the file,
the marker line and the text after it up to the end of the table that follows.

Every number depends only on the packaged configs, the seeds and the path counts printed with
each table, so rerunning this script reproduces docs/model.md's tables exactly.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

import simulator
from simulator import reference, stats
from simulator.config import PACKAGED_CONFIGS
from simulator.model import build_inputs
from simulator.scenarios import COMPARISON_METRICS, load_scenarios

# Published figures (docs/model.md §7): label, published value and how it was stated, source,
# the simulated metric and its sign (burn = -FCF), the tolerance tests/test_calibration.py holds.
PUBLISHED = [
    ("burn 2026", 17.0, "17", "Sep-2025 internal plan (The Information)", "fcf_2026_q50", -1, "25%"),
    ("burn 2027", 35.0, "35", "Sep-2025 internal plan", "fcf_2027_q50", -1, "25%"),
    ("burn 2028", 45.0, "45", "Sep-2025 internal plan", "fcf_2028_q50", -1, "25%"),
    ("revenue 2028", 100.0, "~100", "Sep-2025 internal plan", "revenue_2028_q50", 1, "-"),
    ("revenue 2030", 280.0, "> 280", "Feb-2026 reset (CNBC / Reuters)", "revenue_2030_q50", 1, "10%"),
    ("FCF 2030", 0.0, "> 0", "Feb-2026 reset (CNBC / Reuters)", "fcf_2030_q50", 1, ">= 0"),
    ("total compute 2026-30", 600.0, "~600", "Feb-2026 reset (CNBC)", "compute_spend_total_q50", 1, "25%"),
]
# Q1 2026 actuals (The Information, Jun 2026: docs/model.md §7).
Q1_ACTUALS = [("revenue", 5.7), ("burn (-FCF)", 3.7), ("gross margin", 0.39)]


def plan_table(n_paths: int = 1000) -> str:
    cfg = simulator.load_config(PACKAGED_CONFIGS / "plan.toml")
    res = simulator.run(cfg, n_paths)
    lines = [f"plan.toml, {n_paths:,} paths (all identical: every parameter is pinned), seed {cfg.simulation.seed}",
             "",
             "| figure | published | simulated | difference | tested within | source |",
             "|---|---:|---:|---:|---:|---|"]
    for label, published, stated, source, metric, sign, tolerance in PUBLISHED:
        value = sign * res.metric(metric).value
        diff = value / published - 1 if published else value - published
        diff = 0.0 if abs(diff) < 5e-4 else diff  # no "-0.0%"
        diff = f"{diff:+.1%}" if published else f"{diff:+.1f}"
        lines.append(f"| {label} | {stated} | {value:.1f} | {diff} | {tolerance} | {source} |")
    return "\n".join(lines)


def scenario_table(n_paths: int = 100_000) -> str:
    scenarios = load_scenarios(PACKAGED_CONFIGS)
    seed = scenarios[0].config.simulation.seed
    end = scenarios[0].config.simulation.end_year
    metrics = [m.format(end=end) for m in COMPARISON_METRICS]
    lines = [f"`simulator scenarios -n {n_paths}` (seed {seed}): value and 95% interval", "",
             "| scenario | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for s in scenarios:
        res = simulator.run(s.config, n_paths, seed)
        cells = []
        for m in metrics:
            row = res.metric(m)
            fmt = "{:.3f}" if m.startswith("p_") else "{:.1f}"
            cells.append(f"{fmt.format(row.value)} [{fmt.format(row.ci_low)}, {fmt.format(row.ci_high)}]")
        lines.append(f"| {s.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def q1_sample(n_paths: int) -> np.ndarray:
    """(n, 3): revenue, burn and gross margin of the first quarter of 2026 under the base config."""
    cfg = simulator.load_config(None, ["simulation.steps_per_year=4"])
    inputs = build_inputs(cfg)
    out = np.empty((n_paths, 3))
    for i in range(n_paths):
        step = reference.simulate_path(inputs, cfg.simulation.seed, i)["trace"][0]
        out[i] = step["revenue"], -step["fcf"], 1.0 - step["cogs"] / step["revenue"]
    return out


def backtest_table(n_paths: int = 5000) -> str:
    sample = q1_sample(n_paths)
    lines = [f"base.toml, Q1 2026 (first step at 4 steps a year), {n_paths:,} paths, seed "
             f"{simulator.load_config().simulation.seed}; percentile = share of paths below the actual, "
             "with its Monte Carlo standard error and 95% (Wilson) interval",
             "",
             "| Q1 2026 | actual | model 5% | median | 95% | percentile of the actual | std err | 95% interval |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for (label, actual), x in zip(Q1_ACTUALS, sample.T):
        q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
        pct = stats.wilson(float(np.mean(x < actual)), len(x))
        fmt = "{:.1%}" if label == "gross margin" else "{:.2f}"
        lines.append(f"| {label} | {fmt.format(actual)} | {fmt.format(q05)} | {fmt.format(q50)} | "
                     f"{fmt.format(q95)} | {pct.value:.1%} | {pct.stderr:.1%} | "
                     f"[{pct.ci_low:.1%}, {pct.ci_high:.1%}] |")
    return "\n".join(lines)


def update(path: Path, blocks: dict[str, str]) -> None:
    """Replace each marked table of ``path`` (marker line, caption, table) by its new block."""
    text = path.read_text()
    for name, block in blocks.items():
        # The marker, then anything up to and including the first run of table rows.
        pattern = re.compile(rf"<!-- {name}: [^\n]*-->\n.*?(?:\|[^\n]*\n)+", re.S)
        if len(pattern.findall(text)) != 1:
            raise SystemExit(f"{path}: expected one '<!-- {name}: ... -->' table")
        text = pattern.sub(lambda _: block + "\n", text)
    path.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["plan", "scenarios", "backtest"], help="print one table")
    parser.add_argument("--scenario-paths", type=int, default=100_000, help="paths per scenario (default 100000)")
    parser.add_argument("--backtest-paths", type=int, default=5000, help="paths for the backtest (default 5000)")
    parser.add_argument("--update", type=Path, metavar="FILE", help="replace the tables in FILE instead of printing")
    args = parser.parse_args()
    tables = {"plan": plan_table, "scenarios": lambda: scenario_table(args.scenario_paths),
              "backtest": lambda: backtest_table(args.backtest_paths)}
    blocks = {name: f"<!-- {name}: python docs/make_tables.py --only {name} -->\n{make()}"
              for name, make in tables.items() if args.only in (None, name)}
    if args.update:
        update(args.update, blocks)
    else:
        print("\n\n".join(blocks.values()))


if __name__ == "__main__":
    main()
