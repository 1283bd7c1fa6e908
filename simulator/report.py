"""The report of a finished run: PNG charts and one self-contained ``report.html``.

Everything is read back from the run's Parquet files (``summary``, ``by_year``, ``by_step``, the
``paths/`` dataset when rows were kept, and ``sensitivity.parquet`` when ``simulator sensitivity``
wrote one), so a report can be made at any time after the run, on any machine; the run and the
report may be local folders or URLs (:mod:`simulator.storage`). matplotlib is imported here only,
with its non-interactive backend: the rest of the library never loads it.

:func:`make_report` returns the figures it wrote and the data series each chart drew, so that tests
can check a chart against the Parquet numbers it was drawn from.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .config import validate
from .report_files import REPORT_FILE, generator, report_files_of
from .results import ResultsError, read_paths, read_results, read_table
from .storage import Location, first_line
from .summary import format_number, format_probability, headline_metrics

FIGSIZE = (8.0, 4.5)  # inches
DPI = 100             # so every PNG is 800 x 450 pixels
FAN_VARIABLES = ("revenue", "gross_margin", "fcf", "cash")
TORNADO_TOP = 12
BAND_COLOUR = "#1f77b4"
PLAN_COLOUR = "#d62728"


@dataclass
class Figure:
    name: str      # file name, e.g. fan_cash.png
    title: str
    caption: str   # one line: what the chart shows
    path: Location


@dataclass
class Report:
    """What :func:`make_report` wrote: the HTML page, the PNGs, and the data each chart drew."""

    html: Location
    figures: list[Figure]
    series: dict[str, pd.DataFrame] = field(repr=False)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reading the run


def _read_by_step(folder: Location, manifest_hash: str) -> pd.DataFrame:
    path = folder / "by_step.parquet"
    if not path.exists():
        raise ResultsError(f"{path}: missing; this run was made by an older simulator, run it again to report on it")
    frame, meta = read_table(path)
    if meta.get("config_hash") != manifest_hash:
        raise ResultsError(f"{path}: belongs to another run than the manifest")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _read_derived(folder: Location, name: str, manifest_hash: str) -> pd.DataFrame | None:
    """``name`` (sensitivity.parquet, judgments.parquet) of this run; None where absent or another run's."""
    path = folder / name
    if not path.exists():
        return None
    frame, meta = read_table(path)
    if meta.get("config_hash") != manifest_hash:
        return None  # written for an earlier run in this folder; not this run's
    return frame


def _paths_columns(folder: Location, meta: dict, columns: list[str]) -> pd.DataFrame | None:
    """Only the columns the charts need (the rows can be many); None when the run kept no rows."""
    if meta["paths_kept"] == 0:
        return None
    return read_paths(folder, columns, verify=False)  # read_results has checked the files


# ---------------------------------------------------------------- formatting

def _fmt(metric: str, x: float) -> str:
    return format_probability(x) if metric.startswith("p_") else format_number(x)


def describe(metric: str) -> str:
    """A plain-words description of a summary metric (money in $B)."""
    rules = [
        (r"p_fcf_positive_(\d+)", "probability that free cash flow in {0} is positive"),
        (r"p_shortfall_by_(\d+)", "probability that cash falls under the floor at some point by the end of {0}"),
        (r"p_revenue_(\d+)_at_least_plan", "probability that {0} revenue reaches the plan's"),
        (r"p_compute_spend_within_(.+)", "probability that total compute spend stays within the plan's ${0}B"),
        (r"p_idle_compute_over_(.+)_by_(\d+)", "probability that idle take-or-pay compute payments exceed ${0}B "
                                               "in some year by {1}"),
        (r"compute_spend_total_q(\d+)", "{0}th percentile of total compute spend over the horizon"),
        (r"committed_after_end", "take-or-pay compute still owed after the horizon (not in the funding gap)"),
        (r"(revenue|fcf|gross_margin|cash)_(\d+)_q(\d+)", "{2}th percentile of {1} {0}"),
        (r"funding_gap_q(\d+)", "{0}th percentile of the funding gap (extra capital that was missing)"),
        (r"funding_gap_es95", "average funding gap in the worst 5% of paths"),
        (r"funding_gap_mean", "average funding gap"),
        (r"cfar95_(\w+)_vs_expected", "cash-flow-at-risk (95%), {0}: expected FCF minus its 5th percentile"),
        (r"cfar95_(\w+)_vs_plan", "cash-flow-at-risk (95%), {0}: plan FCF minus the 5th percentile of FCF"),
    ]
    names = {"fcf": "free cash flow", "gross_margin": "gross margin", "revenue": "revenue", "cash": "year-end cash"}
    for pattern, text in rules:
        m = re.fullmatch(pattern, metric)
        if m:
            groups = [names.get(g, str(int(g)) if g.isdigit() and g.startswith("0") else g) for g in m.groups()]
            return text.format(*groups)
    return ""


# ---------------------------------------------------------------- charts


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_axes(plt, title: str):
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    ax.set_title(title, fontsize=12)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _save(plt, fig, path: Location) -> None:
    fig.tight_layout()
    png = io.BytesIO()
    # The mark tells a later report (and a run replaced with --force) that this file is ours to replace.
    fig.savefig(png, format="png", dpi=DPI, metadata={"Software": generator(__version__)})
    plt.close(fig)
    _write(path, png.getvalue())


def _write(path: Location, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as err:
        raise ResultsError(f"{path}: cannot write it ({first_line(err)})") from None


def _money_axis(ax, label: str = "$B") -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel(label)


def _percent_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=None))


FAN_TEXT = {
    "revenue": ("Revenue (annualised)", "$B a year",
                "Revenue per {step}, annualised (the step's revenue x {spy})"),
    "gross_margin": ("Gross margin", "",
                     "Gross margin per {step} (1 - inference compute cost / revenue)"),
    "fcf": ("Free cash flow (annualised)", "$B a year",
            "Free cash flow per {step}, annualised (the step's FCF x {spy})"),
    "cash": ("Cash at the end of each " + "{step}", "$B",
             "Cash at the end of each {step}, after funding and the credit line"),
}


def fan_chart(plt, by_step: pd.DataFrame, var: str, cfg, spy: int, n_traced: int,
              path: Location) -> tuple[Figure, pd.DataFrame]:
    step_name = {1: "year", 4: "quarter", 12: "month"}.get(spy, "step")
    title, unit, what = (s.format(step=step_name, spy=spy) for s in FAN_TEXT[var])
    data = by_step[by_step["variable"] == var].sort_values("step")[["step", "date", "q05", "q25", "q50", "q75", "q95"]]
    data = data.reset_index(drop=True)
    fig, ax = _new_axes(plt, title)
    x = data["date"]
    ax.fill_between(x, data["q05"], data["q95"], color=BAND_COLOUR, alpha=0.18, lw=0, label="90% band (5%-95%)")
    ax.fill_between(x, data["q25"], data["q75"], color=BAND_COLOUR, alpha=0.38, lw=0, label="50% band (25%-75%)")
    ax.plot(x, data["q50"], color=BAND_COLOUR, lw=2, marker="o", ms=3, label="median")
    plan = {"revenue": cfg.plan.revenue, "fcf": cfg.plan.fcf}.get(var)
    if plan:
        label = "company plan (annual figure)"
        for y in cfg.years:
            start, end = pd.Timestamp(y, 1, 1), pd.Timestamp(y, 12, 31)
            ax.hlines(plan[str(y)], start, end, color=PLAN_COLOUR, lw=2, linestyle="--", label=label)
            ax.plot(pd.Timestamp(y, 7, 1), plan[str(y)], "D", color=PLAN_COLOUR, ms=5)
            label = None
    if var == "cash" and cfg.funding.min_cash.dist == "fixed":
        ax.axhline(cfg.funding.min_cash.value, color="black", lw=1.2, linestyle=":",
                   label=f"cash floor ({cfg.funding.min_cash.value:g})")
    if var in ("fcf", "cash"):
        ax.axhline(0, color="grey", lw=0.8)
    if var == "gross_margin":
        _percent_axis(ax)
    else:
        _money_axis(ax, unit)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    _save(plt, fig, path)
    plan_note = " Dashed red: the company's plan, annual figures drawn over their year." if plan else ""
    caption = (f"{what}: median (line), 50% and 90% bands across {n_traced:,} simulated paths (path ids 0 to "
               f"{n_traced - 1:,})."
               f"{plan_note}")
    return Figure(path.name, title, caption, path), data


def fcf_histogram(plt, summary: pd.DataFrame, by_year: pd.DataFrame, paths: pd.DataFrame | None, end: int,
                  n_paths: int, path: Location) -> tuple[Figure, pd.DataFrame]:
    m = summary.set_index("metric")
    p_pos = m.loc[f"p_fcf_positive_{end}"]
    q05 = m.loc[f"fcf_{end}_q05"]
    cfar = m.loc[f"cfar95_{end}_vs_expected"]
    title = f"Free cash flow in {end}: distribution across paths"
    fig, ax = _new_axes(plt, title)
    if paths is not None:
        values = paths[f"fcf_{end}"].to_numpy()
        lo, hi = np.quantile(values, [0.001, 0.999])
        counts, edges = np.histogram(np.clip(values, lo, hi), bins=80, range=(lo, hi), density=True)
        source = f"histogram of the {len(values):,} kept paths, the outer 0.1% tails clipped into the edge bins"
    else:  # no per-path rows: the density between the yearly quantiles
        row = by_year[(by_year["year"] == end) & (by_year["variable"] == "fcf")].iloc[0]
        levels = [1, 5, 10, 25, 50, 75, 90, 95, 99]
        edges = np.array([row[f"q{q:02d}"] for q in levels])
        mass = np.diff(np.array(levels) / 100)
        counts = mass / np.maximum(np.diff(edges), 1e-12)
        source = "density between the yearly quantiles 1%..99% of by_year.parquet, as the run kept no per-path rows"
    centres = 0.5 * (edges[:-1] + edges[1:])
    colours = np.where(centres > 0, "#2ca02c", "#7f7f7f")
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colours, alpha=0.75, lw=0)
    ax.axvline(0, color="black", lw=1)
    ax.axvline(q05.value, color=PLAN_COLOUR, lw=2, linestyle="--",
               label=f"5% quantile: {q05.value:,.1f} (95% CI {q05.ci_low:,.1f} to {q05.ci_high:,.1f})")
    ax.plot([], [], " ", label=f"CFaR 95% (mean - 5% quantile): {cfar.value:,.1f} ± {1.96 * cfar.stderr:,.1f}")
    ax.plot([], [], "s", color="#2ca02c", alpha=0.75,
            label=f"P(FCF > 0) = {p_pos.value:.1%} (95% CI {p_pos.ci_low:.1%} to {p_pos.ci_high:.1%})")
    ax.set_xlabel(f"free cash flow in {end}, $B")
    ax.set_ylabel("density (share of paths per $B)")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    _save(plt, fig, path)
    caption = (f"Free cash flow in {end}: {source}; green: positive. The dashed line is the 5% quantile: "
               f"in 1 path in 20 FCF is this low or lower; CFaR is how far that lies under the expected FCF.")
    return Figure(path.name, title, caption, path), pd.DataFrame({"left": edges[:-1], "right": edges[1:],
                                                                  "density": counts})


def survival_curve(plt, summary: pd.DataFrame, cfg, path: Location) -> tuple[Figure, pd.DataFrame]:
    m = summary.set_index("metric")
    years = list(cfg.years)
    # One step per year: over year y, the share of paths without a shortfall by the end of y.
    x = [pd.Timestamp(y, 1, 1) for y in years] + [pd.Timestamp(years[-1] + 1, 1, 1)]
    rows = [m.loc[f"p_shortfall_by_{y}"] for y in years]
    surv = np.array([1 - r.value for r in rows])
    low = np.array([1 - r.ci_high for r in rows])
    high = np.array([1 - r.ci_low for r in rows])
    title = "Survival: probability of no cash shortfall so far"
    fig, ax = _new_axes(plt, title)
    ax.fill_between(x, np.r_[low, low[-1]], np.r_[high, high[-1]], step="post", color=BAND_COLOUR, alpha=0.3,
                    lw=0, label="95% interval")
    ax.step(x, np.r_[surv, surv[-1]], where="post", color=BAND_COLOUR, lw=2,
            label="P(no shortfall by the end of the year)")
    for y, s in zip(years, surv):
        ax.annotate(f"{s:.1%}", (pd.Timestamp(y, 7, 1), s), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=9)
    floor = cfg.funding.min_cash
    floor_text = f"the ${floor.value:g}B floor" if floor.dist == "fixed" else "the floor"
    ax.set_ylim(0.0 if low.min() < 0.5 else float(low.min()) - 0.05, 1.01)
    _percent_axis(ax)
    ax.set_ylabel("share of paths")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    _save(plt, fig, path)
    caption = (f"Share of paths whose cash has not yet fallen under {floor_text} by the end of each year "
               f"(one step per year, drawn over that year), with its 95% interval.")
    return Figure(path.name, title, caption, path), pd.DataFrame({"year": years, "survival": surv, "low": low,
                                                                  "high": high})


def funding_gap_chart(plt, summary: pd.DataFrame, paths: pd.DataFrame | None, end: int, path: Location
                      ) -> tuple[Figure, pd.DataFrame]:
    m = summary.set_index("metric")
    title = "Funding gap: extra capital that would have been needed"
    fig, ax = _new_axes(plt, title)
    if paths is not None:
        gap = paths["funding_gap"].to_numpy()
        positive = gap[gap > 0]
        share = positive.size / gap.size
        if positive.size:
            lo, hi = max(positive.min(), 1e-3), positive.max()
            edges = np.geomspace(lo, hi * 1.0001, 50) if hi > lo else np.array([lo * 0.9, hi * 1.1])
            counts, edges = np.histogram(positive, bins=edges)
            counts = counts / gap.size
            ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#ff7f0e", alpha=0.8, lw=0)
            ax.set_xscale("log")
            ax.text(0.02, 0.95, f"{share:.1%} of paths fell short (gap > 0)\n{1 - share:.1%} needed no extra capital",
                    transform=ax.transAxes, va="top", fontsize=9,
                    bbox=dict(boxstyle="round", facecolor="white", edgecolor="#ccc"))
        else:
            counts, edges = np.zeros(0), np.zeros(1)
            ax.text(0.5, 0.5, "no path fell short", transform=ax.transAxes, ha="center")
        _percent_axis(ax)
        ax.set_ylabel("share of all paths")
        ax.set_xlabel("funding gap, $B (log scale)")
        data = pd.DataFrame({"left": edges[:-1], "right": edges[1:], "share": counts})
        what = (f"Histogram of the funding gap among the {share:.1%} of kept paths that fell under the floor "
                f"(log scale); the other paths needed nothing.")
    else:  # from the summary's quantiles: the exceedance curve
        levels = [1, 5, 10, 25, 50, 75, 90, 95, 99]
        values = np.array([m.loc[f"funding_gap_q{q:02d}"].value for q in levels])
        exceed = 1 - np.array(levels) / 100
        short = m.loc[f"p_shortfall_by_{end}"].value  # a gap > 0 is a shortfall
        keep = values > 0
        values, exceed = np.r_[0.0, values[keep]], np.r_[short, exceed[keep]]
        ax.plot(values, exceed, "o-", color="#ff7f0e")
        ax.set_yscale("log")
        _percent_axis(ax)
        ax.set_xlabel("funding gap, $B")
        ax.set_ylabel("share of paths with a larger gap")
        ax.text(0.02, 0.05, f"{short:.1%} of paths fell short (gap > 0)", transform=ax.transAxes, va="bottom",
                fontsize=9, bbox=dict(boxstyle="round", facecolor="white", edgecolor="#ccc"))
        data = pd.DataFrame({"gap": values, "exceedance": exceed})
        what = ("Share of paths whose funding gap exceeds each amount, from the run's quantiles of the gap "
                "(the run kept no per-path rows).")
    es = m.loc["funding_gap_es95"]
    q95 = m.loc["funding_gap_q95"]
    for value, style, label in ((q95.value, "--", f"95% quantile: {q95.value:,.1f}"),
                                (es.value, ":", f"mean of the worst 5% (ES95): {es.value:,.1f}")):
        if value > 0:
            ax.axvline(value, color="black", lw=1.5, linestyle=style, label=label)
    if q95.value > 0 or es.value > 0:
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    _save(plt, fig, path)
    caption = (f"{what} The gap is the largest amount by which cash fell under the floor on a path, in $B.")
    return Figure(path.name, title, caption, path), data


def tornado_rows(sens: pd.DataFrame | None, judged: pd.DataFrame | None, end: int) -> pd.DataFrame:
    """The tornado's bars: P(shortfall by ``end``) at each drawn parameter's bottom and top 10% (sensitivity) and
    at each judgment's low and high alternative (judgments), the largest swings first."""
    col = f"p_shortfall_by_{end}"
    frames = []
    if sens is not None:
        frames.append(pd.DataFrame({"name": sens["parameter"].astype(str), "kind": "parameter",
                                    "low": sens[f"{col}_bottom"], "high": sens[f"{col}_top"]}))
    if judged is not None and not judged.empty:
        sides = judged.pivot(index="judgment", columns="side", values=col)
        frames.append(pd.DataFrame({"name": sides.index.astype(str), "kind": "judgment",
                                    "low": sides["low"].to_numpy(), "high": sides["high"].to_numpy()}))
    data = pd.concat(frames, ignore_index=True)
    swing = (data["high"] - data["low"]).abs()
    return data.iloc[np.argsort(-swing.to_numpy(), kind="stable")].head(TORNADO_TOP).reset_index(drop=True)


def tornado_chart(plt, sens: pd.DataFrame | None, judged: pd.DataFrame | None, summary: pd.DataFrame, end: int,
                  path: Location) -> tuple[Figure, pd.DataFrame]:
    col = f"p_shortfall_by_{end}"
    base = summary.set_index("metric").loc[col].value
    data = tornado_rows(sens, judged, end)
    title = f"Tornado: P(shortfall by {end}), parameters and judgments low or high"
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    ax.set_title(title, fontsize=12)
    ypos = np.arange(len(data))[::-1]
    judgment = (data["kind"] == "judgment").to_numpy()
    for rows, hatch, what in ((~judgment, None, "parameter in its"), (judgment, "//", "judgment at its")):
        if rows.any():
            low, high = data["low"].to_numpy()[rows], data["high"].to_numpy()[rows]
            ax.barh(ypos[rows], low - base, left=base, color="#1f77b4", alpha=0.8, hatch=hatch,
                    label=f"{what} {'bottom 10%' if hatch is None else 'low alternative'}")
            ax.barh(ypos[rows], high - base, left=base, color="#d62728", alpha=0.8, hatch=hatch,
                    label=f"{what} {'top 10%' if hatch is None else 'high alternative'}")
    ax.axvline(base, color="black", lw=1, label=f"all paths: {base:.1%}")
    # A "$" in a name (from the config) would start matplotlib's mathtext: draw it as it is.
    labels = [("judgment: " if j else "") + str(p).replace("$", r"\$") for p, j in zip(data["name"], judgment)]
    ax.set_yticks(ypos, labels, fontsize=8)
    _percent_axis(ax, "x")
    ax.set_xlabel(f"P(cash under the floor by the end of {end})")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    _save(plt, fig, path)
    caption = (f"The {len(data)} largest effects on the probability of a shortfall by {end}: among paths where a "
               "drawn parameter is in its lowest (blue) and highest (red) 10% (simulator sensitivity), and, "
               "hatched, when a judgment of the config takes its low and high alternative on the same paths "
               "(simulator sensitivity --judgments).")
    return Figure(path.name, title, caption, path), data


# ---------------------------------------------------------------- the page


def _png_uri(path: Location) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 900px; margin: 2em auto;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.6em 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { background: #f4f4f4; padding: 1px 4px; border-radius: 3px; font-size: 0.9em; word-break: break-all; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
.note { color: #666; font-size: 0.85em; }
"""


def _html_page(meta: dict, cfg, summary: pd.DataFrame, figures: list[Figure], notes: list[str],
               folder: Location) -> str:
    # Every text here may come from a config, a manifest or a path that someone else wrote (a config name
    # such as "<img src=x onerror=...>"): each is escaped, numbers included, since a tampered manifest
    # may hold a string where a number belongs.
    def e(x) -> str:
        return html.escape(str(x))

    frame = summary.set_index("metric")
    runtime = meta.get("runtime", {})
    n_paths = meta["n_paths"]
    n_text = f"{n_paths:,}" if isinstance(n_paths, int) else str(n_paths)
    kept = meta.get("paths_kept", 0)
    rows = [("config", f"{e(meta.get('config_name', '?'))} (hash <code>{e(str(meta['config_hash'])[:16])}</code>)"),
            ("seed", e(meta["seed"])),
            ("paths", e(f"{n_text} ({meta.get('steps_per_year')} steps a year, years "
                        f"{cfg.simulation.start_year}-{cfg.simulation.end_year}; per-path rows kept: "
                        f"{f'{kept:,}' if isinstance(kept, int) else kept})")),
            ("quantiles", e(meta.get("quantiles", ""))),
            ("created", e(f"{runtime.get('created_utc', '?')} (simulator {meta.get('simulator_version', '?')})")),
            ("reproduce", f"<code>{e(meta.get('reproduce', ''))}</code>"),
            ("report", f"<code>simulator report {e(folder)}</code>")]
    meta_table = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    head = []
    for name in headline_metrics(cfg):
        if name not in frame.index:
            continue
        r = frame.loc[name]
        head.append(f"<tr><td><code>{e(name)}</code></td><td class='num'>{e(_fmt(name, r.value))}</td>"
                    f"<td class='num'>[{e(_fmt(name, r.ci_low))}, {e(_fmt(name, r.ci_high))}]</td>"
                    f"<td class='num'>{e(_fmt(name, r.stderr))}</td><td>{e(describe(name))}</td></tr>")
    figs = "\n".join(f"<figure id='{e(f.name)}'><img src='{_png_uri(f.path)}' alt='{e(f.title)}' "
                     f"width='{int(FIGSIZE[0] * DPI)}' height='{int(FIGSIZE[1] * DPI)}'>"
                     f"<figcaption>{e(f.caption)}</figcaption></figure>" for f in figures)
    note_html = "".join(f"<p class='note'>{e(n)}</p>" for n in notes)
    name = e(meta.get("config_name", ""))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="{e(generator(__version__))}">
<title>Risk report: {name}</title>
<style>{CSS}</style></head>
<body>
<h1>Risk report: {name}</h1>
<p>Monte Carlo simulation of the AI lab's finances: {e(n_text)} paths of revenue, margins, costs and
funding. Money is in billions of US dollars ($B). Each figure has a 95% interval reflecting Monte Carlo error
(how precisely this many paths pin it down), not model uncertainty.</p>
<h2>Run</h2>
<table>{meta_table}</table>
<h2>Headline figures</h2>
<table id="headline"><tr><th>metric</th><th>value</th><th>95% interval</th><th>std err</th><th>meaning</th></tr>
{chr(10).join(head)}
</table>
<p class="note">The cash floor is the minimum cash the lab must hold; a shortfall is cash under it at the end of
any step. The funding gap is the largest amount by which cash fell under the floor.</p>
<h2>Charts</h2>
{figs}
{note_html}
</body></html>
"""


def _replaceable(out: Location, names: list[str]) -> set[str]:
    """The files of an earlier report of ours in ``out`` (see :mod:`simulator.report_files`), which this report
    may replace; raises, before anything is written, when ``out`` holds a file of one of ``names`` that is
    someone else's (the simulator never overwrites or deletes a file it did not write)."""
    if out.exists() and not out.is_dir():
        raise ResultsError(f"{out}: exists and is not a folder; expected a folder for the report")
    ours = set(report_files_of(out))
    present = set(out.names())
    foreign = [name for name in names if name in present and name not in ours]
    if foreign:
        more = f" ({len(foreign) - 1} more such files)" if len(foreign) > 1 else ""
        raise ResultsError(f"{out / foreign[0]}: not written by simulator report, so the report will not replace "
                           f"it{more}; move it away or give another folder with -o")
    return ours


def make_report(folder: str | Path, out: str | Path | None = None) -> Report:
    """Write the charts (PNG) and ``report.html`` of the run in ``folder`` into ``out`` (default: ``folder``);
    either may be a local folder or a URL."""
    folder = Location(folder)
    out = Location(out) if out is not None else folder
    results = read_results(folder, paths=False)
    meta = results.metadata
    cfg = validate(meta["config"], source=f"{folder}/manifest.json")
    end = cfg.simulation.end_year
    spy = int(meta["steps_per_year"])
    by_step = _read_by_step(folder, meta["config_hash"])
    sens = _read_derived(folder, "sensitivity.parquet", meta["config_hash"])
    judged = _read_derived(folder, "judgments.parquet", meta["config_hash"])
    ranked = sens is not None or judged is not None
    paths = _paths_columns(folder, meta, [f"fcf_{end}", "funding_gap"])
    charts = [f"fan_{var}.png" for var in FAN_VARIABLES] + ["fcf_histogram.png", "survival.png", "funding_gap.png"]
    ours = _replaceable(out, [REPORT_FILE, *charts, *(["tornado.png"] if ranked else [])])
    try:
        out.mkdir()
    except OSError as err:
        raise ResultsError(f"{out}: cannot write the report there ({first_line(err)})") from None
    n_traced = int(by_step["paths"].max())
    notes = []
    if paths is not None and len(paths) < meta["n_paths"]:
        notes.append(f"Histograms use the {len(paths):,} kept paths of {meta['n_paths']:,}; "
                     "the headline figures use every path.")
    if sens is None:
        notes.append(f"No sensitivity.parquet in the run folder: run `simulator sensitivity {folder}` and then "
                     f"`simulator report {folder}` again for the tornado chart.")
    if judged is None and cfg.judgments:
        notes.append(f"No judgments.parquet in the run folder: run `simulator sensitivity --judgments {folder}` and "
                     f"then `simulator report {folder}` again to see the config's judgments in the tornado chart.")
    plt = _plt()
    figures, series = [], {}
    for var in FAN_VARIABLES:
        fig, data = fan_chart(plt, by_step, var, cfg, spy, n_traced, out / f"fan_{var}.png")
        figures.append(fig)
        series[f"fan_{var}"] = data
    for key, (fig, data) in {
        "fcf_histogram": fcf_histogram(plt, results.summary, results.by_year, paths, end, meta["n_paths"],
                                       out / "fcf_histogram.png"),
        "survival": survival_curve(plt, results.summary, cfg, out / "survival.png"),
        "funding_gap": funding_gap_chart(plt, results.summary, paths, end, out / "funding_gap.png"),
    }.items():
        figures.append(fig)
        series[key] = data
    if ranked:
        fig, data = tornado_chart(plt, sens, judged, results.summary, end, out / "tornado.png")
        figures.append(fig)
        series["tornado"] = data
    elif "tornado.png" in ours:
        (out / "tornado.png").remove()  # an earlier report's: the page would not show it, the folder would
    page = _html_page(meta, cfg, results.summary, figures, notes, folder)
    html_path = out / REPORT_FILE
    _write(html_path, page.encode())
    return Report(html_path, figures, series, notes)
