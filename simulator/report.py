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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .config import validate
from .report_files import REPORT_FILE, generator, report_files_of
from .results import ACTUALS, HISTOGRAM_TABLE, ResultsError, read_paths, read_results, read_table, weighted_resample
from .storage import Location, first_line
from .summary import HISTOGRAM_TAIL, format_number, format_probability, headline_metrics, histogram_edges

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
    size: tuple[float, float] = FIGSIZE  # inches; DPI pixels each

    @property
    def pixels(self) -> tuple[int, int]:
        """Width and height of the PNG."""
        return round(self.size[0] * DPI), round(self.size[1] * DPI)


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
    """Only the columns the charts need (the rows can be many); None when the run kept no rows. A posterior
    run's rows come resampled by their weights (``results.weighted_resample``): a histogram of them is the
    posterior's, in effective paths."""
    if meta["paths_kept"] == 0:
        return None
    if ACTUALS in meta:
        sample = weighted_resample(read_paths(folder, [*columns, "weight"], verify=False), meta["seed"])
        sample.attrs["resampled"] = True
        return sample
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

MONEY = "USD bn"


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


def _save(plt, fig, path: Location, formats: tuple[str, ...] = ("png",)) -> None:
    """Write the figure as ``path`` (PNG) and, for each other format in ``formats``, beside it (``fan_cash.svg``)."""
    fig.tight_layout()
    # The mark tells a later report (and a run replaced with --force) that this file is ours to replace.
    marks = {"png": {"Software": generator(__version__)}, "svg": {"Creator": generator(__version__), "Date": None}}
    for fmt in formats:
        data = io.BytesIO()
        fig.savefig(data, format=fmt, dpi=DPI, metadata=marks[fmt])
        _write(path if fmt == "png" else sibling(path, fmt), data.getvalue())
    plt.close(fig)


def sibling(path: Location, fmt: str) -> Location:
    """The file beside ``path`` (``fan_cash.png``) that holds its chart in format ``fmt`` (``fan_cash.svg``)."""
    return Location(re.sub(r"\.png$", f".{fmt}", str(path)))


def _write(path: Location, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as err:
        raise ResultsError(f"{path}: cannot write it ({first_line(err)})") from None


def _money_axis(ax, label: str = MONEY) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel(label)


def _plain_numbers():
    """Tick labels as numbers (0.1, 1, 10, 1,000), not powers of ten."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.10g}")


def _percent_axis(ax, axis: str = "y", decimals: int | None = None) -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def _year_axis(ax, years: list[int], pad_days: int = 0) -> None:
    """Every year of the horizon on the x axis: a grid line where each year ends, its label in its middle."""
    import matplotlib.dates as mdates
    from matplotlib.ticker import NullFormatter

    ax.set_xlim(pd.Timestamp(years[0], 1, 1), pd.Timestamp(years[-1] + 1, 1, 1) + pd.Timedelta(days=pad_days))
    ax.xaxis.set_major_locator(mdates.YearLocator(1))
    ax.xaxis.set_major_formatter(NullFormatter())
    ax.xaxis.set_minor_locator(mdates.MonthLocator(bymonth=7, bymonthday=1))
    ax.xaxis.set_minor_formatter(mdates.DateFormatter("%Y"))
    ax.tick_params(axis="x", which="minor", length=0)
    ax.grid(True, axis="x", which="major", alpha=0.3)
    ax.set_xlabel("year")


FAN_TEXT = {
    "revenue": ("Revenue (annualised)", f"revenue, {MONEY} a year",
                "Revenue per {step}, annualised (the step's revenue x {spy})"),
    "gross_margin": ("Gross margin", "gross margin, share of revenue",
                     "Gross margin per {step} (1 - inference compute cost / revenue)"),
    "fcf": ("Free cash flow (annualised)", f"free cash flow, {MONEY} a year",
            "Free cash flow per {step}, annualised (the step's FCF x {spy})"),
    "cash": ("Cash at the end of each " + "{step}", f"cash, {MONEY}",
             "Cash at the end of each {step}, after funding and the credit line"),
}


def fan_chart(plt, by_step: pd.DataFrame, var: str, cfg, spy: int, n_traced: int,
              path: Location, formats: tuple[str, ...] = ("png",)) -> tuple[Figure, pd.DataFrame]:
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
        ax.set_ylabel(unit)
    else:
        _money_axis(ax, unit)
    _year_axis(ax, list(cfg.years))
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    _save(plt, fig, path, formats)
    plan_note = " Dashed red: the company's plan, annual figures drawn over their year." if plan else ""
    caption = (f"{what}: median (line), 50% and 90% bands across {n_traced:,} simulated paths (path ids 0 to "
               f"{n_traced - 1:,}), each step drawn at its last day."
               f"{plan_note}")
    return Figure(path.name, title, caption, path), data


@dataclass
class Bins:
    """A histogram the report draws: ``counts`` paths in the bins between ``edges``, of a ``population`` of paths
    (the first and last bins also hold the values beyond them); ``values``: the paths' own values, where the
    counts were made from kept rows (exact quantiles), else None (the run's stored histogram)."""

    edges: np.ndarray
    counts: np.ndarray
    population: float
    source: str   # where the counts come from, in words
    values: np.ndarray | None = field(default=None, repr=False)

    @property
    def shares(self) -> np.ndarray:
        return self.counts / self.population

    def quantile(self, q: float, log: bool = False) -> float:
        """The q-quantile of the population: exact from the values, else read off the bins (linearly within the
        bin that holds it, in logs where ``log``)."""
        if self.values is not None:
            return float(np.quantile(self.values, q))
        cum = np.r_[0.0, np.cumsum(self.counts)] / self.population
        i = int(np.clip(np.searchsorted(cum, q, side="left"), 1, len(self.counts)))
        lo, hi = self.edges[i - 1], self.edges[i]
        frac = (q - cum[i - 1]) / (cum[i] - cum[i - 1]) if cum[i] > cum[i - 1] else 0.5
        return float(lo * (hi / lo) ** frac if log else lo + frac * (hi - lo))


def _stored_bins(stored: pd.DataFrame, variable: str, source: str) -> Bins:
    rows = stored[stored["variable"] == variable].sort_values("bin")
    counts = rows["paths"].to_numpy(float)
    edges = np.r_[rows["left"].to_numpy(), rows["right"].to_numpy()[-1:]]
    return Bins(edges, counts, float(counts.sum()), source)


def _kept_bins(values: np.ndarray, lowest: float, highest: float, log: bool, source: str) -> Bins:
    edges = histogram_edges(lowest, highest, log)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return Bins(edges, counts.astype(float), float(values.size), source, values)


STORED = "every path, binned as the run went (histograms.parquet)"


def _resampled(paths: pd.DataFrame) -> str:
    """How the source of a histogram of ``paths`` says they were resampled by weight (a posterior run's)."""
    return " (resampled by the reported figures' weights: as many as the kept paths are worth)" \
        if paths.attrs.get("resampled") else ""


def fcf_bins(paths: pd.DataFrame | None, stored: pd.DataFrame | None, end: int) -> Bins | None:
    """The last year's FCF of the kept paths, else of every path from the run's stored histogram; None where the
    run has neither (it kept no rows and was made before histograms.parquet)."""
    if paths is not None:
        values = paths[f"fcf_{end}"].to_numpy()
        lo, hi = np.quantile(values, [HISTOGRAM_TAIL, 1 - HISTOGRAM_TAIL])
        return _kept_bins(values, lo, hi, False, f"the {values.size:,} kept paths{_resampled(paths)}")
    return None if stored is None else _stored_bins(stored, f"fcf_{end}", STORED)


def gap_bins(paths: pd.DataFrame | None, stored: pd.DataFrame | None) -> Bins | None:
    """The funding gap of the paths that fell short (gap > 0), kept or stored (see :func:`fcf_bins`); bins with
    no population where no path fell short."""
    if paths is not None:
        gap = paths["funding_gap"].to_numpy()
        positive = gap[gap > 0]
        source = f"the {positive.size:,} kept paths that fell short{_resampled(paths)}"
        if not positive.size:
            return Bins(np.zeros(1), np.zeros(0), 0.0, source, positive)
        hi = positive.max()
        return _kept_bins(positive, max(np.quantile(positive, HISTOGRAM_TAIL), hi * 1e-6), hi, True, source)
    if stored is None:
        return None
    if not (stored["variable"] == "funding_gap").any():
        return Bins(np.zeros(1), np.zeros(0), 0.0, STORED)
    return _stored_bins(stored, "funding_gap", "the paths that fell short, all of them binned as the run went "
                                               "(histograms.parquet)")


def fcf_histogram(plt, summary: pd.DataFrame, bins: Bins, end: int, path: Location,
                  formats: tuple[str, ...] = ("png",)) -> tuple[Figure, pd.DataFrame]:
    m = summary.set_index("metric")
    p_pos = m.loc[f"p_fcf_positive_{end}"]
    q05 = m.loc[f"fcf_{end}_q05"]
    cfar = m.loc[f"cfar95_{end}_vs_expected"]
    title = f"Free cash flow in {end}: distribution across paths"
    fig, ax = _new_axes(plt, title)
    edges, shares = bins.edges, bins.shares
    centres = 0.5 * (edges[:-1] + edges[1:])
    colours = np.where(centres > 0, "#2ca02c", "#7f7f7f")
    ax.bar(edges[:-1], shares, width=np.diff(edges), align="edge", color=colours, alpha=0.75, lw=0)
    ax.axvline(0, color="black", lw=1)
    ax.axvline(q05.value, color=PLAN_COLOUR, lw=2, linestyle="--",
               label=f"5% quantile: {q05.value:,.1f} (95% CI {q05.ci_low:,.1f} to {q05.ci_high:,.1f})")
    ax.plot([], [], " ", label=f"CFaR 95% (mean - 5% quantile): {cfar.value:,.1f} ± {1.96 * cfar.stderr:,.1f}")
    ax.plot([], [], "s", color="#2ca02c", alpha=0.75,
            label=f"P(FCF > 0) = {p_pos.value:.1%} (95% CI {p_pos.ci_low:.1%} to {p_pos.ci_high:.1%})")
    _percent_axis(ax, decimals=1)
    ax.set_xlabel(f"free cash flow in {end}, {MONEY}")
    ax.set_ylabel(f"share of paths per bin ({np.diff(edges).mean():,.2g} {MONEY} wide)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=2, fontsize=8, frameon=False)
    _save(plt, fig, path, formats)
    caption = (f"Free cash flow in {end}: histogram of {bins.source}, the outer {HISTOGRAM_TAIL:.1%} on each "
               "side counted in the end bins; green: positive. The dashed line is the 5% quantile of every path: "
               "in 1 path in 20 FCF is this low or lower; CFaR is how far that lies under the expected FCF.")
    return Figure(path.name, title, caption, path), pd.DataFrame({"left": edges[:-1], "right": edges[1:],
                                                                  "share": shares})


FIGURE_UNITS = {"revenue": MONEY, "burn": MONEY, "fcf": MONEY, "cash": MONEY, "gross_margin": "share"}


def reported_chart(plt, figures: list[dict], path: Location,
                   formats: tuple[str, ...] = ("png",)) -> tuple[Figure, pd.DataFrame]:
    """A posterior run's reported figures against the model's figure for their period: the 5-95% band and
    median of the prior (grey) and of the posterior (blue), and the reported value (red), one panel each."""
    n = len(figures)
    size = (FIGSIZE[0], 1.0 + 1.1 * n)
    fig, axes = plt.subplots(n, 1, figsize=size, dpi=DPI, squeeze=False)
    title = "Reported figures against the model's, before and after the update"
    fig.suptitle(title, fontsize=12)
    for ax, f in zip(axes[:, 0], figures):
        for y, side, colour in ((1, "prior", "#7f7f7f"), (0, "posterior", BAND_COLOUR)):
            ax.plot([f[f"{side}_q05"], f[f"{side}_q95"]], [y, y], color=colour, lw=6, alpha=0.6, solid_capstyle="butt")
            ax.plot([f[f"{side}_q50"]], [y], "|", color="black", ms=14)
        ax.plot([f["value"]], [0.5], "D", color=PLAN_COLOUR, ms=8)
        ax.set_yticks([0, 1], ["after", "before"])
        ax.set_ylim(-0.6, 1.6)
        unit = FIGURE_UNITS[f["variable"]]
        ax.set_xlabel(f"{f['period']} {f['variable'].replace('_', ' ')}, {unit}: reported {f['value']:g} (red); "
                      f"below it before the update: {percent(f['prior_percentile'])} of the paths", fontsize=9)
        if unit == "share":
            _percent_axis(ax, axis="x")
        ax.grid(True, axis="x", alpha=0.3)
    _save(plt, fig, path, formats)
    caption = ("Each reported figure (red) against the model's own figure for its period: its 5% to 95% range "
               "(bar) and median (tick) before the update (grey: the config alone, an out-of-sample test) and "
               "after it (blue: every path weighted by how likely the reported figures are given it). From the "
               "by_step paths.")
    data = pd.DataFrame([{k: f[k] for k in ("period", "variable", "value", "prior_q05", "prior_q50", "prior_q95",
                                             "posterior_q05", "posterior_q50", "posterior_q95")} for f in figures])
    return Figure(path.name, title, caption, path, size), data


def survival_curve(plt, summary: pd.DataFrame, cfg, path: Location,
                   formats: tuple[str, ...] = ("png",)) -> tuple[Figure, pd.DataFrame]:
    m = summary.set_index("metric")
    years = list(cfg.years)
    rows = [m.loc[f"p_shortfall_by_{y}"] for y in years]
    surv = np.array([1 - r.value for r in rows])
    low = np.array([1 - r.ci_high for r in rows])
    high = np.array([1 - r.ci_low for r in rows])
    # Known at each year's end only: the curve holds the previous year's value over a year and drops at its end.
    ends = [pd.Timestamp(y + 1, 1, 1) for y in years]
    x = [pd.Timestamp(years[0], 1, 1), *ends]
    title = "Survival: probability of no cash shortfall so far"
    fig, ax = _new_axes(plt, title)
    ax.step(x, np.r_[1.0, surv], where="post", color=BAND_COLOUR, lw=2,
            label="P(no shortfall by the end of the year)")
    ax.errorbar(ends, surv, yerr=[surv - low, high - surv], fmt="o", color=BAND_COLOUR, ms=5, capsize=4,
                elinewidth=1.5, label="its 95% interval, at the year's end")
    for end, s in zip(ends, surv):
        ax.annotate(f"{s:.1%}", (end, s), textcoords="offset points", xytext=(-5, -13), ha="right", fontsize=9)
    floor = cfg.funding.min_cash
    floor_text = f"the USD {floor.value:g} bn floor" if floor.dist == "fixed" else "the floor"
    ax.set_ylim(0.0, 1.04)
    _percent_axis(ax)
    ax.set_ylabel("share of paths without a shortfall")
    _year_axis(ax, years, pad_days=45)
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    _save(plt, fig, path, formats)
    caption = (f"Share of paths whose cash has not yet fallen under {floor_text} by the end of each year, with "
               "its 95% interval; known at year ends, so each year's fall is drawn at its end.")
    return Figure(path.name, title, caption, path), pd.DataFrame({"year": years, "survival": surv, "low": low,
                                                                  "high": high})


GAP_QUANTILES = (0.5, 0.95)


def funding_gap_chart(plt, summary: pd.DataFrame, bins: Bins, end: int, path: Location,
                      formats: tuple[str, ...] = ("png",)) -> tuple[Figure, pd.DataFrame]:
    """The funding gap of the paths that fell short, with its median and 95% quantile among those paths."""
    short = summary.set_index("metric").loc[f"p_shortfall_by_{end}"]
    title = f"Funding gap of the paths that fell short by {end}"
    fig, ax = _new_axes(plt, title)
    ax.plot([], [], " ", label=f"{short.value:.1%} of all paths fell short\n(95% CI {short.ci_low:.1%} to "
                               f"{short.ci_high:.1%})")
    quantiles = {}
    if bins.population:
        ax.bar(bins.edges[:-1], bins.shares, width=np.diff(bins.edges), align="edge", color="#ff7f0e", alpha=0.8,
               lw=0, label="share of the paths that fell short")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(_plain_numbers())
        for q, style in zip(GAP_QUANTILES, ("--", ":")):
            quantiles[q] = value = bins.quantile(q, log=True)
            ax.axvline(value, color="black", lw=1.5, linestyle=style,
                       label=f"{q:.0%} quantile among them: {value:,.1f}")
        ax.set_xlabel(f"funding gap, {MONEY} (log scale)")
    else:
        ax.text(0.5, 0.5, "no path fell short", transform=ax.transAxes, ha="center")
        ax.set_xlabel(f"funding gap, {MONEY}")
    _percent_axis(ax, decimals=1)
    ax.set_ylabel("share of the paths that fell short")
    # Off the data: beside the axes, which tight_layout narrows to make room.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    _save(plt, fig, path, formats)
    read = "exact" if bins.values is not None else "read off the bins"
    caption = (f"Histogram of the funding gap (the largest amount by which cash fell under the floor, {MONEY}) "
               f"over {bins.source}; the paths that never fell short are left out, and the shares, the median "
               f"and the 95% quantile ({read}) are all of the paths that fell short.")
    data = pd.DataFrame({"left": bins.edges[:-1], "right": bins.edges[1:], "share": bins.shares})
    data.attrs["quantiles"] = quantiles
    return Figure(path.name, title, caption, path), data


PARAMETER_WORDS = {
    "competition.severity": "Competition: share of run-rate a shock takes",
    "compute.gross_margin_0": "Gross margin at the start",
    "compute.price_drift": "Compute price drift",
    "compute.supply_shock_size": "Compute supply shock size",
    "compute.usage_drift": "Compute usage drift",
    "costs.opex_base": "Operating costs at the start",
    "costs.opex_growth": "Operating cost growth",
    "costs.opex_revenue_ratio": "Operating costs, share of revenue",
    "costs.partner_share": "Partner share of revenue",
    "training.revenue_elasticity": "Training spend's response to revenue",
    "training.plan": "Training plan",
    "funding.initial_cash": "Cash at the start",
    "funding.min_cash": "Cash floor",
    "funding.contingent.size_multiple": "Size of a contingent raise (x run-rate)",
    "funding.contingent.intercept": "Chance of a contingent raise (intercept)",
    "funding.contingent.distress_factor": "Chance of a raise under the floor (factor)",
    "compute.resale": "Share of idle compute resold",
    "parameter_correlation": "Correlation",
}
REVENUE_WORDS = {"run_rate": "revenue run-rate at the start", "growth_initial": "revenue growth (initial)",
                 "growth_long_run": "revenue growth (long run)", "half_life": "growth half-life",
                 "ceiling": "revenue ceiling"}


def in_words(key: str) -> str:
    """A config key (``revenue.consumer.growth_initial``) in words (``Consumer revenue growth (initial)``); a key
    without its own words as its last part, with the rest in brackets."""
    parts = key.split(".")
    if key in PARAMETER_WORDS:
        return PARAMETER_WORDS[key]
    if len(parts) == 3 and parts[0] == "revenue" and parts[2] in REVENUE_WORDS:
        return f"{parts[1].capitalize()} {REVENUE_WORDS[parts[2]]}"
    if len(parts) == 4 and parts[:2] == ["funding", "scheduled"] and parts[3] == "amount":
        return f"Scheduled raise {parts[2]}: amount"
    if len(parts) == 4 and parts[:2] == ["compute", "contracts"] and parts[3] == "take_or_pay":
        return f"Take-or-pay share, {parts[2]} contract"
    last = parts[-1].replace("_", " ")
    rest = " ".join(parts[:-1]).replace("_", " ")
    return last[:1].upper() + last[1:] + (f" ({rest})" if rest else "")


def _value(x: float, scaled: bool = False) -> str:
    return f"x{x:.3g}" if scaled else f"{x:.3g}"


def tornado_rows(sens: pd.DataFrame | None, judged: pd.DataFrame | None, end: int) -> pd.DataFrame:
    """The tornado's bars: P(shortfall by ``end``) at each drawn parameter's bottom and top 10% (sensitivity) and
    at each judgment's low and high alternative (judgments), the largest swings first; ``label``: the bar's name
    in words with the parameter's values (the bottom decile's greatest, the top's least) or the judgment's."""
    col = f"p_shortfall_by_{end}"
    frames = []
    if sens is not None:
        values = [f"bottom 10% ≤ {_value(lo)}, top 10% ≥ {_value(hi)}"
                  for lo, hi in zip(sens["bottom_decile_max"], sens["top_decile_min"])]
        frames.append(pd.DataFrame({"name": sens["parameter"].astype(str), "kind": "parameter",
                                    "low": sens[f"{col}_bottom"], "high": sens[f"{col}_top"],
                                    "label": [f"{in_words(str(p))}\n{v}" for p, v in zip(sens["parameter"], values)]}))
    if judged is not None and not judged.empty:
        sides = judged.pivot(index="judgment", columns="side", values=col)
        setting = judged.pivot(index="judgment", columns="side", values="setting").loc[sides.index]
        scaled = judged.groupby("judgment")["scaled"].first().loc[sides.index]
        key = judged.groupby("judgment")["key"].first().loc[sides.index] if "key" in judged else sides.index
        labels = [f"Judgment: {in_words(str(k).split('[')[0])}\nlow {_value(lo, s)}, high {_value(hi, s)}"
                  for k, lo, hi, s in zip(key, setting["low"], setting["high"], scaled)]
        frames.append(pd.DataFrame({"name": sides.index.astype(str), "kind": "judgment",
                                    "low": sides["low"].to_numpy(), "high": sides["high"].to_numpy(),
                                    "label": labels}))
    data = pd.concat(frames, ignore_index=True)
    swing = (data["high"] - data["low"]).abs()
    return data.iloc[np.argsort(-swing.to_numpy(), kind="stable")].head(TORNADO_TOP).reset_index(drop=True)


def tornado_chart(plt, sens: pd.DataFrame | None, judged: pd.DataFrame | None, summary: pd.DataFrame, end: int,
                  path: Location, formats: tuple[str, ...] = ("png",)) -> tuple[Figure, pd.DataFrame]:
    col = f"p_shortfall_by_{end}"
    base = summary.set_index("metric").loc[col].value
    data = tornado_rows(sens, judged, end)
    title = f"Tornado: P(shortfall by {end}) at low and high values"
    size = (FIGSIZE[0], 1.8 + 0.42 * len(data))  # room for two lines of label a bar
    fig, ax = plt.subplots(figsize=size, dpi=DPI)
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
    ax.set_yticks(ypos, [label.replace("$", r"\$") for label in data["label"]], fontsize=8)
    from matplotlib.ticker import MaxNLocator

    _percent_axis(ax, "x", decimals=0)
    ax.xaxis.set_major_locator(MaxNLocator(7))
    ax.set_xlabel(f"P(cash under the floor by the end of {end}), share of paths")
    ax.grid(True, axis="x", alpha=0.3)
    # Below the axis label: 0.6 inch under the axes, whose height is the figure's less its margins (~1.3 inch).
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.6 / (size[1] - 1.3)), ncols=2, fontsize=7, frameon=False)
    _save(plt, fig, path, formats)
    caption = (f"The {len(data)} largest effects on the probability of a shortfall by {end}: among paths where a "
               "drawn parameter is in its lowest (blue) and highest (red) 10% (simulator sensitivity; under each "
               "name, the values that bound those 10%), and, hatched, when a judgment of the config takes its low "
               "and high alternative on the same paths (simulator sensitivity --judgments; x: a factor).")
    return Figure(path.name, title, caption, path, size), data


# ---------------------------------------------------------------- the page


def percent(p: float) -> str:
    """A probability as a percentage, with the digits a small one needs (61.2%, 0.35%, 0.012%)."""
    return f"{p:.1%}" if p >= 0.01 or p == 0 else f"{p * 100:.2g}%"


def verdict(summary: pd.DataFrame, cfg, given: str = "") -> str:
    """The report's opening paragraph, in plain words: P(FCF > 0) in the last year, P(shortfall by its end)
    and the funding gap, each with its 95% interval from the summary (plain text: the page escapes it). A
    posterior run's says so (``given``: which figures, in words)."""
    m = summary.set_index("metric")
    end = cfg.simulation.end_year
    fcf, short = m.loc[f"p_fcf_positive_{end}"], m.loc[f"p_shortfall_by_{end}"]
    q95, es = m.loc["funding_gap_q95"], m.loc["funding_gap_es95"]
    floor = cfg.funding.min_cash
    floor_text = f"its floor of USD {floor.value:g} bn" if floor.dist == "fixed" else "its floor"

    def p(r) -> str:
        return f"{percent(r.value)} of the paths (95% interval {percent(r.ci_low)} to {percent(r.ci_high)})"

    def usd(r) -> str:
        return f"USD {format_number(r.value)} bn (95% interval {format_number(r.ci_low)} to {format_number(r.ci_high)})"

    text = (f"Verdict: free cash flow in {end} is positive on {p(fcf)}. Cash falls under {floor_text} at some "
            f"point by the end of {end} on {p(short)}. ")
    if "ess" in m.index:
        text = text.replace("Verdict: ", f"Verdict, given the reported figures{given}: ").replace(
            " of the paths ", " of the weighted paths ")
    if q95.value > 0:
        text += (f"The extra capital that would have kept it there, the funding gap, is {usd(q95)} or more on "
                 f"1 path in 20, and {usd(es)} on average over the worst 5% of paths.")
    else:
        text += (f"Fewer than 1 path in 20 needs extra capital to keep it there (the funding gap's 95% quantile is "
                 f"{usd(q95)}); over the worst 5% of paths the gap is {usd(es)} on average.")
    return text


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
#verdict { font-size: 1.05em; background: #f4f7fb; border-left: 4px solid #1f77b4; padding: 0.6em 0.9em; }
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
    prior = meta.get("prior") or {}
    for name in headline_metrics(cfg):
        if name not in frame.index:
            continue
        r = frame.loc[name]
        before = (prior.get(name) or [None])[0]
        prior_cell = (f"<td class='num'>{'' if before is None else e(_fmt(name, before))}</td>" if prior else "")
        head.append(f"<tr><td><code>{e(name)}</code></td><td class='num'>{e(_fmt(name, r.value))}</td>"
                    f"<td class='num'>[{e(_fmt(name, r.ci_low))}, {e(_fmt(name, r.ci_high))}]</td>"
                    f"<td class='num'>{e(_fmt(name, r.stderr))}</td>{prior_cell}<td>{e(describe(name))}</td></tr>")
    figs = "\n".join(f"<figure id='{e(f.name)}'><img src='{_png_uri(f.path)}' alt='{e(f.title)}' "
                     f"width='{f.pixels[0]}' height='{f.pixels[1]}'>"
                     f"<figcaption>{e(f.caption)}</figcaption></figure>" for f in figures)
    note_html = "".join(f"<p class='note'>{e(n)}</p>" for n in notes)
    prior_head = "<th>prior</th>" if prior else ""
    given, update = _update_section(meta, frame, e)
    name = e(meta.get("config_name", ""))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="{e(generator(__version__))}">
<title>Risk report: {name}</title>
<style>{CSS}</style></head>
<body>
<h1>Risk report: {name}</h1>
<p id="verdict">{e(verdict(summary, cfg, given))}</p>
<p>Monte Carlo simulation of the AI lab's finances: {e(n_text)} paths of revenue, margins, costs and
funding. Money is in billions of US dollars (USD bn). Each figure has a 95% interval reflecting Monte Carlo error
(how precisely this many paths pin it down), not model uncertainty.</p>
<h2>Run</h2>
<table>{meta_table}</table>
<h2>Headline figures</h2>
<table id="headline"><tr><th>metric</th><th>value</th><th>95% interval</th><th>std err</th>{prior_head}
<th>meaning</th></tr>
{chr(10).join(head)}
</table>
{update}
<p class="note">The cash floor is the minimum cash the lab must hold; a shortfall is cash under it at the end of
any step. The funding gap is the largest amount by which cash fell under the floor.</p>
<h2>Charts</h2>
{figs}
{note_html}
</body></html>
"""


def _update_section(meta: dict, frame: pd.DataFrame, e) -> tuple[str, str]:
    """A posterior run's words for the verdict (which figures) and its section on the update: the reported
    figures, each against the model's before and after, and what the weighted paths are worth (``e``: the
    page's escaping)."""
    figures = meta.get("figures")
    if ACTUALS not in meta or not figures:
        return "", ""
    kept = meta[ACTUALS]
    given = f" ({kept['file']}: " + "; ".join(f"{f['period']} {f['variable']} {f['value']:g}" for f in figures) + ")"
    rows = []
    for f in figures:
        unit = FIGURE_UNITS[f["variable"]]
        cells = [f["period"], f["variable"], f"{f['value']:g}", unit, f"{f['source']} ({f['published']})",
                 f"{f['error']:g}", f"{f['ess_share_alone']:.1%}"]
        if "prior_q50" in f:
            cells += [f"{f['prior_q05']:.4g} / {f['prior_q50']:.4g} / {f['prior_q95']:.4g}",
                      f"{f['posterior_q05']:.4g} / {f['posterior_q50']:.4g} / {f['posterior_q95']:.4g}",
                      f"{percent(f['prior_percentile'])} ± {percent(1.96 * f['prior_percentile_se'])}"]
        rows.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    ess, share = frame.loc["ess"].value, frame.loc["ess_share"].value
    return given, f"""<h2>Updated on reported figures</h2>
<p>Every path is weighted by how likely the figures of <code>{e(kept['file'])}</code> are given the path's own
figures for their periods; every figure above is the weighted one, and the prior column gives the same paths
unweighted (the config alone). The weighted paths are worth {e(f'{ess:,.0f}')} independent ones
({e(f'{share:.1%}')} of them): the standard errors are those of that many.</p>
<table id="figures"><tr><th>period</th><th>variable</th><th>reported</th><th>unit</th><th>source</th><th>error</th>
<th>paths left effective by it alone</th><th>model before: 5% / 50% / 95%</th><th>after</th>
<th>share of paths below it before (±95%)</th></tr>
{chr(10).join(rows)}
</table>"""


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


Chart = Callable[[Any, Location], tuple[Figure, pd.DataFrame]]  # (matplotlib.pyplot, the PNG's path) -> drawn
FORMATS = ("png", "svg")  # `simulator report --format`: the PNGs always (the page embeds them), SVGs beside them
SAMPLE_HINT = "sample:100000"


def _notes(folder: Location, meta: dict, cfg, paths: pd.DataFrame | None, stored: pd.DataFrame | None,
           sens: pd.DataFrame | None, judged: pd.DataFrame | None) -> list[str]:
    """What the page does not show, and the command that would make it show it."""
    notes = []
    if paths is not None and len(paths) < meta["n_paths"]:
        notes.append(f"Histograms use the {len(paths):,} kept paths of {meta['n_paths']:,}; "
                     "the headline figures use every path.")
    if paths is None and stored is None:
        notes.append("This run kept no per-path rows and was made before runs wrote histograms.parquet: run it "
                     "again for the histograms of the FCF and the funding gap.")
    if sens is None and paths is not None:
        notes.append(f"No sensitivity.parquet in the run folder: run `simulator sensitivity {folder}` and then "
                     f"`simulator report {folder}` again for the tornado chart.")
    elif sens is None:
        notes.append(f"No tornado chart of the drawn parameters: `simulator sensitivity` ranks them on the per-path "
                     f"rows, which this run did not keep; run the config again with --keep-paths {SAMPLE_HINT} "
                     "(or all) for it.")
    if judged is None and cfg.judgments:
        notes.append(f"No judgments.parquet in the run folder: run `simulator sensitivity --judgments {folder}` and "
                     f"then `simulator report {folder}` again to see the config's judgments in the tornado chart.")
    return notes


def make_report(folder: str | Path, out: str | Path | None = None, formats: tuple[str, ...] = ("png",)) -> Report:
    """Write the charts (PNG, and SVG beside them where ``formats`` has "svg") and ``report.html`` of the run in
    ``folder`` into ``out`` (default: ``folder``); either may be a local folder or a URL."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"format {unknown[0]!r}: expected one of {', '.join(FORMATS)}")
    formats = tuple(f for f in FORMATS if f == "png" or f in formats)
    folder = Location(folder)
    out = Location(out) if out is not None else folder
    results = read_results(folder, paths=False)
    meta = results.metadata
    summary = results.summary
    cfg = validate(meta["config"], source=f"{folder}/manifest.json")
    end = cfg.simulation.end_year
    spy = int(meta["steps_per_year"])
    by_step = _read_by_step(folder, meta["config_hash"])
    n_traced = int(by_step["paths"].max())
    sens = _read_derived(folder, "sensitivity.parquet", meta["config_hash"])
    judged = _read_derived(folder, "judgments.parquet", meta["config_hash"])
    stored = _read_derived(folder, f"{HISTOGRAM_TABLE}.parquet", meta["config_hash"])
    paths = _paths_columns(folder, meta, [f"fcf_{end}", "funding_gap"])
    fcf, gap = fcf_bins(paths, stored, end), gap_bins(paths, stored)
    # Each chart by its name, drawn into the file it is given, once the folder is known to be ours to write.
    def fan(var: str) -> Chart:
        return lambda plt, path: fan_chart(plt, by_step, var, cfg, spy, n_traced, path, formats)

    draw: dict[str, Chart] = {f"fan_{var}": fan(var) for var in FAN_VARIABLES}
    if fcf is not None:
        draw["fcf_histogram"] = lambda plt, path: fcf_histogram(plt, summary, fcf, end, path, formats)
    draw["survival"] = lambda plt, path: survival_curve(plt, summary, cfg, path, formats)
    if gap is not None:
        draw["funding_gap"] = lambda plt, path: funding_gap_chart(plt, summary, gap, end, path, formats)
    if meta.get("figures") and "prior_q50" in meta["figures"][0]:
        draw["reported"] = lambda plt, path: reported_chart(plt, meta["figures"], path, formats)
    if sens is not None or judged is not None:
        draw["tornado"] = lambda plt, path: tornado_chart(plt, sens, judged, summary, end, path, formats)
    names = [f"{key}.{fmt}" for key in draw for fmt in formats]
    ours = _replaceable(out, [REPORT_FILE, *names])
    try:
        out.mkdir()
    except OSError as err:
        raise ResultsError(f"{out}: cannot write the report there ({first_line(err)})") from None
    plt = _plt()
    figures, series = [], {}
    for key, chart in draw.items():
        fig, data = chart(plt, out / f"{key}.png")
        figures.append(fig)
        series[key] = data
    for name in sorted(ours - {REPORT_FILE, *names}):
        (out / name).remove()  # an earlier report's chart: the page would not show it, the folder would
    notes = _notes(folder, meta, cfg, paths, stored, sens, judged)
    page = _html_page(meta, cfg, summary, figures, notes, folder)
    html_path = out / REPORT_FILE
    _write(html_path, page.encode())
    return Report(html_path, figures, series, notes)
