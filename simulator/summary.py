"""From per-path outputs to the tables of a run: per-path rows, headline metrics, by-year quantiles."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from . import stats
from .engine import Simulation

QUANTILES = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99)
YEARLY = ("revenue", "gross_margin", "fcf", "cash", "compute_spend")

def qname(q: float) -> str:
    return f"q{round(q * 100):02d}"


def yearly(sim: Simulation) -> dict[str, np.ndarray]:
    """Per-path yearly values, each (n, n_years)."""
    rev = sim.annual_var("revenue")
    with np.errstate(divide="ignore", invalid="ignore"):
        gross_margin = np.where(rev > 0, 1.0 - sim.annual_var("cogs") / rev, np.nan)
    return {"revenue": rev, "gross_margin": gross_margin, "fcf": sim.annual_var("fcf"),
            "cash": sim.annual_var("cash"), "compute_spend": sim.annual_var("compute_spend")}


def first_shortfall_dates(sim: Simulation) -> pa.Array:
    """Last day of the first step in shortfall (null when none)."""
    start = dt.date(sim.config.simulation.start_year, 1, 1)
    spy = sim.inputs.spy
    steps = sim.scalar("first_shortfall_step")
    ends = {}
    for k in np.unique(steps[steps >= 0]).astype(int):
        year, part = divmod(int(k) + 1, spy)
        step_end = dt.date(start.year + year, 1 + 12 * part // spy, 1)
        ends[k] = step_end - dt.timedelta(days=1)
    days = np.array([(ends[int(k)] - dt.date(1970, 1, 1)).days if k >= 0 else 0 for k in steps], dtype=np.int32)
    return pa.array(days, type=pa.date32(), mask=steps < 0)


def paths_table(sim: Simulation) -> pa.Table:
    """One row per path: MODEL.md §7 plus end-of-year cash and compute spend."""
    years = sim.config.years
    cols: dict[str, pa.Array | np.ndarray] = {"path_id": np.arange(sim.n_paths, dtype=np.int64)}
    for j, name in enumerate(sim.params):
        cols[name] = sim.theta[:, j]
    per_year = yearly(sim)
    for var in YEARLY:
        for i, y in enumerate(years):
            cols[f"{var}_{y}"] = per_year[var][:, i]
    for name in ("cash_end", "lowest_cash", "funding_gap"):
        cols[name] = sim.scalar(name)
    cols["first_shortfall"] = first_shortfall_dates(sim)
    fcf = per_year["fcf"]
    positive = fcf > 0
    first = np.argmax(positive, axis=1)
    cols["breakeven_year"] = pa.array(np.asarray(years, dtype=np.int16)[first], mask=~positive.any(axis=1))
    cols["compute_spend_total"] = per_year["compute_spend"].sum(axis=1)
    cols["raised_total"] = sim.scalar("raised_scheduled") + sim.scalar("raised_contingent")
    for name in ("raised_scheduled", "raised_contingent", "credit_drawn_max", "credit_outstanding_end"):
        cols[name] = sim.scalar(name)
    cols["n_raises"] = sim.scalar("n_raises").astype(np.int32)
    return pa.table(cols)


def summary_frame(sim: Simulation) -> pd.DataFrame:
    """One row per metric: value, stderr, ci_low, ci_high (see :mod:`simulator.stats`)."""
    cfg = sim.config
    years = cfg.years
    end = cfg.simulation.end_year
    spy = sim.inputs.spy
    per_year = yearly(sim)
    rows: dict[str, stats.Estimate] = {}

    rows[f"p_fcf_positive_{end}"] = stats.probability(per_year["fcf"][:, -1] > 0)
    first_sf = sim.scalar("first_shortfall_step")
    for i, y in enumerate(years):
        rows[f"p_shortfall_by_{y}"] = stats.probability((first_sf >= 0) & (first_sf < (i + 1) * spy))
    rows[f"p_revenue_{end}_at_least_plan"] = stats.probability(per_year["revenue"][:, -1] >= cfg.plan.revenue[str(end)])
    compute_total = per_year["compute_spend"].sum(axis=1)
    rows[f"p_compute_spend_within_{cfg.plan.compute_total:g}"] = stats.probability(compute_total <= cfg.plan.compute_total)

    for var in ("revenue", "fcf", "gross_margin", "cash"):
        for i, y in enumerate(years):
            x_sorted = np.sort(per_year[var][:, i])
            for q in QUANTILES:
                rows[f"{var}_{y}_{qname(q)}"] = stats.quantile_sorted(x_sorted, q)

    gap_sorted = np.sort(sim.scalar("funding_gap"))
    for q in QUANTILES:
        rows[f"funding_gap_{qname(q)}"] = stats.quantile_sorted(gap_sorted, q)
    rows["funding_gap_mean"] = stats.mean(gap_sorted)
    rows["funding_gap_es95"] = stats.upper_expected_shortfall(gap_sorted, 0.05)
    compute_sorted = np.sort(compute_total)
    for q in (0.05, 0.50, 0.95):
        rows[f"compute_spend_total_{qname(q)}"] = stats.quantile_sorted(compute_sorted, q)

    # Cash-Flow-at-Risk, CorporateMetrics style at 95%, per year and cumulative.
    fcf_columns = [(str(y), per_year["fcf"][:, i], cfg.plan.fcf[str(y)]) for i, y in enumerate(years)]
    fcf_columns.append(("cumulative", per_year["fcf"].sum(axis=1), sum(cfg.plan.fcf.values())))
    for label, x, plan in fcf_columns:
        x_sorted = np.sort(x)
        q05 = stats.quantile_sorted(x_sorted, 0.05)
        rows[f"fcf_{label}_q05"] = q05
        rows[f"cfar95_{label}_vs_expected"] = stats.mean_minus_quantile(x, x_sorted, 0.05)
        rows[f"cfar95_{label}_vs_plan"] = q05.shifted(plan, -1.0)

    frame = pd.DataFrame([(k, *v) for k, v in rows.items()],
                         columns=["metric", "value", "stderr", "ci_low", "ci_high"])
    return frame.astype({"metric": "string", "value": "float64", "stderr": "float64",
                         "ci_low": "float64", "ci_high": "float64"})


def by_year_frame(sim: Simulation) -> pd.DataFrame:
    """One row per (year, variable): mean with its stderr and the quantiles 1..99."""
    per_year = yearly(sim)
    records = []
    for i, y in enumerate(sim.config.years):
        for var in YEARLY:
            x = per_year[var][:, i]
            x_sorted = np.sort(x)
            m = stats.mean(x)
            rec = {"year": y, "variable": var, "mean": m.value, "mean_stderr": m.stderr}
            rec.update({qname(q): stats.quantile_sorted(x_sorted, q).value for q in QUANTILES})
            records.append(rec)
    frame = pd.DataFrame.from_records(records)
    return frame.astype({"year": "int16", "variable": "string"})


def headline_metrics(config) -> list[str]:
    """The figures printed after a run and by `simulator show`, in order."""
    end = config.simulation.end_year
    return [f"p_fcf_positive_{end}", *(f"p_shortfall_by_{y}" for y in config.years),
            f"p_revenue_{end}_at_least_plan", f"p_compute_spend_within_{config.plan.compute_total:g}",
            f"revenue_{end}_q05", f"revenue_{end}_q50", f"revenue_{end}_q95",
            f"fcf_{end}_q05", f"fcf_{end}_q50", f"fcf_{end}_q95", f"gross_margin_{end}_q50",
            "funding_gap_q50", "funding_gap_q95", "funding_gap_es95",
            f"cfar95_{end}_vs_expected", f"cfar95_{end}_vs_plan"]
