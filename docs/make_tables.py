"""Print the tables of docs/model.md as markdown: plan vs published, the scenarios, the Q1 2026 backtest and the
update on it.

    python docs/make_tables.py                      # all four (about a minute)
    python docs/make_tables.py --only backtest --backtest-paths 20000
    python docs/make_tables.py --update docs/model.md   # replace the tables there in place

Each table starts with a marker line ``<!-- NAME: ... -->``; ``--update`` replaces, in the file,
the marker line and the text after it up to the end of the table that follows.

Every number depends only on the packaged configs, the seeds and the path counts printed with
each table, so rerunning this script reproduces docs/model.md's tables exactly.
"""

from __future__ import annotations

import argparse
import functools
import re
import tempfile
from pathlib import Path

import simulator
from simulator.analysis import compare
from simulator.config import PACKAGED_CONFIGS
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
# The reported figures the backtest and the update use (docs/model.md §6; their source is in §7).
ACTUALS = PACKAGED_CONFIGS / "actuals" / "2026h1.toml"


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


def posterior_runs(n_paths: int) -> dict:
    """Base, and base updated on ACTUALS with its source's errors (M: 10%) and had it been of high confidence
    (H: 5%): every row kept, same seed, so the updates pair path by path with the prior."""
    cfg = simulator.load_config()
    high = ACTUALS.read_text().replace('confidence = "M"', 'confidence = "H"')
    with tempfile.TemporaryDirectory() as folder:
        high_file = Path(folder) / "2026h1-high.toml"
        high_file.write_text(high)
        return {"prior": simulator.run(cfg, n_paths, keep_paths="all"),
                "posterior": simulator.run(cfg, n_paths, keep_paths="all", actuals=ACTUALS),
                "high": simulator.run(cfg, n_paths, keep_paths="all", actuals=high_file)}


def backtest_table(runs: dict, n_paths: int) -> str:
    """Each reported figure against base's own figure for its period, before (out of sample) and after the
    update (the run's record of its figures: the first 20,000 paths)."""
    figures = runs["posterior"].metadata["figures"]
    lines = [f"base.toml as of 2026-03-01 and `simulator run --actuals configs/actuals/2026h1.toml`, "
             f"{n_paths:,} paths, seed {simulator.load_config().simulation.seed}; the model's figure for the "
             f"quarter on the first {figures[0]['paths']:,} paths (by_step's), before (the config alone) and after "
             "the update; percentile = share of the paths below the reported figure before it, with its standard "
             "error", "",
             "| Q1 2026 | reported | error | before: 5% | median | 95% | percentile | std err "
             "| after: 5% | median | 95% | paths left effective by it alone |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for f in figures:
        fmt = "{:.1%}" if f["variable"] == "gross_margin" else "{:.2f}"
        error = f"{f['error']:.0%} " + ("points" if f["variable"] == "gross_margin" else
                                        "of gross cash costs" if f["variable"] == "burn" else "relative")
        cells = [f["variable"].replace("_", " "), fmt.format(f["value"]), error,
                 *(fmt.format(f[f"prior_q{q:02d}"]) for q in (5, 50, 95)),
                 f"{f['prior_percentile']:.2%}", f"{f['prior_percentile_se']:.2%}",
                 *(fmt.format(f[f"posterior_q{q:02d}"]) for q in (5, 50, 95)), f"{f['ess_share_alone']:.0%}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_table(runs: dict, n_paths: int) -> str:
    """The headline figures before and after the update, the change with its paired standard error (the same
    paths, weighted and not), and the update had the source been of high confidence."""
    medium, high = (compare(runs["prior"], runs[name]).table.set_index("metric") for name in ("posterior", "high"))
    ess = {name: runs[name].metric("ess_share").value for name in ("posterior", "high")}
    lines = [f"base.toml, {n_paths:,} paths, seed {simulator.load_config().simulation.seed}: the prior (the config "
             "alone) and the posterior given configs/actuals/2026h1.toml, on the same paths; change = posterior - "
             "prior with its paired standard error (`simulator compare PRIOR POSTERIOR`). Paths left effective: "
             f"{ess['posterior']:.0%} with the source's errors (M), {ess['high']:.0%} had it been of high "
             "confidence (H: 5%)", "",
             "| figure | prior | posterior (M: 10%) | change | std err | posterior (H: 5%) | change | std err |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for metric in medium.index:
        m, h = medium.loc[metric], high.loc[metric]
        digits = 4 if metric.startswith("p_") else 2
        lines.append(f"| {metric} | {m.a:.{digits}f} | {m.b:.{digits}f} | {m['diff']:+.{digits}f} | "
                     f"{m.se_paired:.{digits}f} | {h.b:.{digits}f} | {h['diff']:+.{digits}f} | "
                     f"{h.se_paired:.{digits}f} |")
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
    parser.add_argument("--only", choices=["plan", "scenarios", "backtest", "update"], help="print one table")
    parser.add_argument("--scenario-paths", type=int, default=100_000, help="paths per scenario (default 100000)")
    parser.add_argument("--backtest-paths", type=int, default=200_000,
                        help="paths of the backtest's and the update's runs (default 200000)")
    parser.add_argument("--update", type=Path, metavar="FILE", help="replace the tables in FILE instead of printing")
    args = parser.parse_args()
    runs = functools.cache(lambda: posterior_runs(args.backtest_paths))  # the backtest's and the update's
    tables = {"plan": plan_table, "scenarios": lambda: scenario_table(args.scenario_paths),
              "backtest": lambda: backtest_table(runs(), args.backtest_paths),
              "update": lambda: update_table(runs(), args.backtest_paths)}
    blocks = {name: f"<!-- {name}: python docs/make_tables.py --only {name} -->\n{make()}"
              for name, make in tables.items() if args.only in (None, name)}
    if args.update:
        update(args.update, blocks)
    else:
        print("\n\n".join(blocks.values()))


if __name__ == "__main__":
    main()
