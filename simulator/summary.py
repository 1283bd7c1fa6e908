"""From per-path outputs to the tables of a run: per-path rows, headline metrics, by-year quantiles.

Summaries are built from two ingredients the engine collects chunk by chunk: integer counts for the
probabilities (exact for any number of paths) and one sample object per summary variable
(``simulator.samples``: all values, or a streamed histogram).
"""

from __future__ import annotations

import datetime as dt

import numba
import numpy as np
import pandas as pd
import pyarrow as pa

from . import kernel, stats
from .errors import InvariantError, SettingsError
from .jit import jit
from .model import committed_after_end
from .samples import HistogramSample, SortedSample, WeightedSample

QUANTILES = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99)
YEARLY = ("revenue", "gross_margin", "fcf", "cash", "compute_spend")
# The one variable that may be undefined on a path: the gross margin of a year without revenue (a segment not yet
# launched, or revenue that competition shocks drove to 0). Its statistics are over the paths where it is
# defined; how many were not is reported (``n_undefined``). Where it is defined on no path (or on one, for a
# standard error) the statistic is NaN, and that is the only NaN the tables may hold (``check_finite``).
UNDEFINED_VAR = "gross_margin"
MIN_PATHS = 2  # the fewest paths (antithetic: pairs) whose summaries have standard errors
IDLE_THRESHOLD = 10.0  # $B a year of idle take-or-pay payments: p_idle_compute_over_10_by_<end> (model v2)
# Per-path yearly compute columns (model v2), straight from the kernel's annual outputs: in paths/ only.
COMPUTE_YEARLY = (("compute_units", kernel.A_UNITS), ("contract_spend", kernel.A_CONTRACT),
                  ("spot_spend", kernel.A_SPOT), ("idle_compute", kernel.A_IDLE), ("compute_resale", kernel.A_RESALE),
                  ("utilisation", kernel.A_UTIL))


class DefinedPart:
    """The values of a sample that are not NaN (NaN sorts last in both kinds of sample, so the ranks below
    ``n`` are the same), as a sample for :mod:`stats`. Antithetic pairs are not used: a pair may have one
    defined value, so the standard errors are those of independent paths."""

    values = None

    def __init__(self, sample, n_defined: int):
        self.sample, self.n = sample, n_defined
        if isinstance(sample, SortedSample):
            defined = sample.sorted[:n_defined]
            self.total, self.total_sq = float(np.sum(defined)), float(np.sum(defined * defined))
        else:  # a histogram's totals leave NaN out
            self.total, self.total_sq = sample.total, sample.total_sq

    def value_at(self, rank: int) -> float:
        return self.sample.value_at(rank)

    def rank_error(self, rank: int) -> float:
        return self.sample.rank_error(rank) * self.sample.n / self.n


def n_undefined(sample) -> int:
    """How many of the sample's values are NaN."""
    if isinstance(sample, SortedSample):
        return int(np.count_nonzero(np.isnan(sample.sorted)))
    if isinstance(sample, WeightedSample):
        return sample.missing
    return int(sample.n - sample.cum[sample.top])


def defined(sample):
    """``sample`` itself where every value is defined (the same numbers, to the bit, as before NaN were left
    out), else its :class:`DefinedPart`; None where no value is."""
    missing = n_undefined(sample)
    if missing == 0:
        return sample
    if isinstance(sample, WeightedSample):  # it holds the defined values only
        return sample if sample.n > 0 else None
    return DefinedPart(sample, sample.n - missing) if missing < sample.n else None


def n_defined(sample) -> int:
    """How many paths' worth of defined values ``sample`` has (effective paths for a weighted one)."""
    return sample.n if isinstance(sample, WeightedSample) else sample.n - n_undefined(sample)


def quantile_of(sample, q: float) -> stats.Estimate:
    """``stats.quantile`` of the defined values; NaN where there are none."""
    part = defined(sample)
    return stats.quantile(part, q) if part is not None else stats.Estimate(*[np.nan] * 4)


def mean_of(sample) -> stats.Estimate:
    """``stats.mean`` of the defined values (its stderr NaN for one value); NaN where there are none."""
    part = defined(sample)
    if part is None:
        return stats.Estimate(*[np.nan] * 4)
    if part.n == 1:
        return stats.Estimate(part.total, np.nan, np.nan, np.nan)
    return stats.mean(part)


def format_probability(x: float) -> str:
    """A probability for a table: 4 decimals, or 3 significant digits under 1%."""
    if x != x:
        return "nan"
    return f"{x:.4f}" if x == 0 or x >= 0.01 else f"{x:.2e}"


def format_number(x: float) -> str:
    """An amount for a table: 3 decimals under 10, else 1."""
    return "nan" if x != x else f"{x:,.3f}" if abs(x) < 10 else f"{x:,.1f}"


def qname(q: float) -> str:
    return f"q{round(q * 100):02d}"


def yearly(annual: np.ndarray) -> dict[str, np.ndarray]:
    """Per-path yearly values from the kernel's ``annual`` array, each (n, n_years): the yearly rows of
    :func:`variables`."""
    n, _, n_years = annual.shape
    rows = np.empty((len(YEARLY) * n_years + 3, n))
    _variable_rows(annual, np.zeros((n, len(kernel.SCALAR_VARS))), rows)
    return {var: rows[k * n_years:(k + 1) * n_years].T for k, var in enumerate(YEARLY)}


def variables(model, annual: np.ndarray, scalars: np.ndarray) -> np.ndarray:
    """Per-path values of every variable the summaries take quantiles or means of: one row per name of
    ``model.variables`` (:func:`variable_names`; rows contiguous, for binning), one column per path."""
    out = np.empty((len(model.variables), len(annual)))
    _variable_rows(annual, scalars, out)
    return out


def variable_names(config) -> list[str]:
    """The rows of :func:`variables`: every yearly variable for every year, then the per-path ones."""
    return [f"{var}_{y}" for var in YEARLY for y in config.years] + [
        "funding_gap", "compute_spend_total", "fcf_cumulative"]


def needs_bin_sums(name: str) -> bool:
    """Whether :func:`summary_frame` reads sums within a streamed histogram's bins of this variable: the funding
    gap's expected shortfall and the cash-flow-at-risk's covariance (``stats.mean_minus_quantile``) do. The
    other variables' histograms keep counts only, which take 2.5x less time to add."""
    return name == "funding_gap" or name.startswith("fcf_")


@jit(parallel=True)
def _variable_rows(annual, scalars, out):
    """Fill ``out`` with :func:`variables`' rows, blocks of ``kernel.OUTPUT_BLOCK`` paths in parallel: each row is
    written while the block's outputs sit in L1 (writing all rows path by path took twice as long). Yearly rows
    in the order of ``YEARLY`` (gross margin 1 - cogs / revenue, NaN without revenue); totals summed year by
    year."""
    n, n_years = annual.shape[0], annual.shape[2]
    for blk in numba.prange((n + kernel.OUTPUT_BLOCK - 1) // kernel.OUTPUT_BLOCK):
        lo, hi = blk * kernel.OUTPUT_BLOCK, min(n, (blk + 1) * kernel.OUTPUT_BLOCK)
        for y in range(n_years):
            for i in range(lo, hi):
                rev = annual[i, kernel.A_REV, y]
                out[y, i] = rev
                out[n_years + y, i] = 1.0 - annual[i, kernel.A_COGS, y] / rev if rev > 0 else np.nan
            for i in range(lo, hi):
                out[2 * n_years + y, i] = annual[i, kernel.A_FCF, y]
                out[3 * n_years + y, i] = annual[i, kernel.A_CASH, y]
                out[4 * n_years + y, i] = annual[i, kernel.A_COMPUTE, y]
        for i in range(lo, hi):
            spend = fcf = 0.0
            for y in range(n_years):
                spend += annual[i, kernel.A_COMPUTE, y]
                fcf += annual[i, kernel.A_FCF, y]
            out[5 * n_years, i] = scalars[i, kernel.S_FUNDING_GAP]
            out[5 * n_years + 1, i] = spend
            out[5 * n_years + 2, i] = fcf


PAIRS = ":both"  # suffix of the count of antithetic pairs in which both paths have the event


def event_names(config) -> list[str]:
    """The probability metrics whose paths :func:`event_counts` counts, in its order."""
    end = config.simulation.end_year
    return ([f"p_fcf_positive_{end}"] + [f"p_shortfall_by_{y}" for y in config.years]
            + [f"p_revenue_{end}_at_least_plan", f"p_compute_spend_within_{config.plan.compute_total:g}",
               f"p_idle_compute_over_{IDLE_THRESHOLD:g}_by_{end}"])


def event_counts(model, annual: np.ndarray, scalars: np.ndarray) -> dict[str, int]:
    """Number of paths meeting each probability metric's event (``model.events``; integers: exact in any
    chunking); for antithetic runs also the number of pairs (paths 2k, 2k+1) where both do."""
    return counts_of(model, event_flags(model, annual, scalars))


def event_flags(model, annual: np.ndarray, scalars: np.ndarray) -> np.ndarray:
    """Whether each path meets each probability metric's event: (len(model.events), paths)."""
    config = model.config
    flags = np.empty((len(model.events), len(annual)), np.bool_)
    _event_flags(annual, scalars, model.steps_per_year, config.plan.revenue[str(config.simulation.end_year)],
                 config.plan.compute_total, IDLE_THRESHOLD, flags)
    return flags


def counts_of(model, flags: np.ndarray) -> dict[str, int]:
    """:func:`event_counts` from :func:`event_flags`."""
    names = model.events
    out = dict(zip(names, (int(k) for k in np.count_nonzero(flags, axis=1))))
    if model.config.simulation.antithetic:
        both = np.count_nonzero(flags[:, 0::2] & flags[:, 1::2], axis=1)
        out.update({name + PAIRS: int(k) for name, k in zip(names, both)})
    return out


@jit(parallel=True)
def _event_flags(annual, scalars, spy, revenue_plan, compute_plan, idle_threshold, out):
    """Per path, the events of :func:`event_counts` in its order: FCF positive in the last year, a first
    shortfall by the end of each year, revenue at least the plan's in the last year, total compute spend
    within the plan's (summed year by year), idle take-or-pay payments over ``idle_threshold`` in some year."""
    n_years = annual.shape[2]
    for i in numba.prange(annual.shape[0]):
        out[0, i] = annual[i, kernel.A_FCF, n_years - 1] > 0
        first = scalars[i, kernel.S_FIRST_SHORTFALL]
        for y in range(n_years):
            out[1 + y, i] = first >= 0 and first < (y + 1) * spy
        out[1 + n_years, i] = annual[i, kernel.A_REV, n_years - 1] >= revenue_plan
        total = 0.0
        for y in range(n_years):
            total += annual[i, kernel.A_COMPUTE, y]
        out[2 + n_years, i] = total <= compute_plan
        idle = False
        for y in range(n_years):
            idle |= annual[i, kernel.A_IDLE, y] > idle_threshold
        out[3 + n_years, i] = idle


def summary_frame(config, n_paths: int, counts: dict[str, int], samples: dict,
                  weights: np.ndarray | None = None, flags: np.ndarray | None = None) -> pd.DataFrame:
    """One row per metric: value, stderr, ci_low, ci_high (see :mod:`simulator.stats`). Gross margins are over the
    paths with revenue that year; ``gross_margin_<y>_n_undefined`` counts the others. A posterior run passes its
    paths' ``weights`` and event ``flags`` (:class:`simulator.engine.Simulation`): every figure is then weighted,
    its standard error that of the effective sample size (Kish), and ``ess`` and ``ess_share`` say what that is."""
    check_paths(config, n_paths)
    rows: dict[str, stats.Estimate] = {}
    if weights is not None:
        assert flags is not None  # a posterior run's flags come with its weights
        shares, ess = stats.effective_counts(weights, flags, counts)
        for name, effective in shares.items():
            rows[name] = stats.wilson(min(1.0, effective / ess), round(ess))
        rows["ess"] = stats.Estimate(ess, 0.0, ess, ess)
        rows["ess_share"] = stats.Estimate(ess / n_paths, 0.0, ess / n_paths, ess / n_paths)
    else:
        for name, hits in counts.items():
            if name.endswith(PAIRS):
                continue
            rows[name] = (stats.paired_probability(hits, counts[name + PAIRS], n_paths) if name + PAIRS in counts
                          else stats.wilson(hits / n_paths, n_paths))
    for var in ("revenue", "fcf", "gross_margin", "cash"):
        for y in config.years:
            for q in QUANTILES:
                rows[f"{var}_{y}_{qname(q)}"] = (quantile_of if var == UNDEFINED_VAR else stats.quantile)(
                    samples[f"{var}_{y}"], q)
    for y in config.years:
        count = float(n_undefined(samples[f"{UNDEFINED_VAR}_{y}"]))
        rows[f"{UNDEFINED_VAR}_{y}_n_undefined"] = stats.Estimate(count, 0.0, count, count)
    gap = samples["funding_gap"]
    for q in QUANTILES:
        rows[f"funding_gap_{qname(q)}"] = stats.quantile(gap, q)
    rows["funding_gap_mean"] = stats.mean(gap)
    rows["funding_gap_es95"] = stats.upper_expected_shortfall(gap, 0.05)
    for q in (0.05, 0.50, 0.95):
        rows[f"compute_spend_total_{qname(q)}"] = stats.quantile(samples["compute_spend_total"], q)
    owed = committed_after_end(config)  # the same on every path: the contracts' take-or-pay after the horizon
    rows["committed_after_end"] = stats.Estimate(owed, 0.0, owed, owed)

    # Cash-Flow-at-Risk, CorporateMetrics style at 95%, per year and cumulative.
    fcf_columns = [(str(y), samples[f"fcf_{y}"], config.plan.fcf[str(y)]) for y in config.years]
    fcf_columns.append(("cumulative", samples["fcf_cumulative"], sum(config.plan.fcf.values())))
    for label, sample, plan in fcf_columns:
        q05 = stats.quantile(sample, 0.05)
        rows[f"fcf_{label}_q05"] = q05
        rows[f"cfar95_{label}_vs_expected"] = stats.mean_minus_quantile(sample, 0.05)
        rows[f"cfar95_{label}_vs_plan"] = q05.shifted(plan, -1.0)

    frame = pd.DataFrame([(k, *v) for k, v in rows.items()],
                         columns=["metric", "value", "stderr", "ci_low", "ci_high"])
    frame = frame.astype({"metric": "string", "value": "float64", "stderr": "float64",
                          "ci_low": "float64", "ci_high": "float64"})
    undefined = {f"{UNDEFINED_VAR}_{y}_{qname(q)}" for y in config.years for q in QUANTILES
                 if n_defined(samples[f"{UNDEFINED_VAR}_{y}"]) == 0}
    check_finite("summary", frame, frame["metric"].isin(undefined).to_numpy(), "metric")
    return frame


def check_paths(config, n_paths: int) -> None:
    """Refuse a run too small for standard errors (a run of one path, or one antithetic pair, had NaN in them)."""
    pairs = config.simulation.antithetic
    if n_paths < MIN_PATHS * (2 if pairs else 1):
        raise SettingsError(f"n_paths = {n_paths}: expected at least {MIN_PATHS * (2 if pairs else 1)} paths"
                            + (f" ({MIN_PATHS} antithetic pairs)" if pairs else "")
                            + " for the summaries' standard errors")


def check_finite(table: str, frame, undefined, label: str) -> None:
    """Refuse a NaN or infinity anywhere in ``frame``'s float columns, but in its rows where ``undefined``
    (a gross margin defined on too few paths: see UNDEFINED_VAR): a bug, or a case the summaries do not define,
    is never written as a number."""

    for column in frame.columns:
        values = frame[column].to_numpy()
        if values.dtype.kind != "f":
            continue
        bad = ~np.isfinite(values) & ~undefined
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            where = ", ".join(str(frame[c].iloc[i]) for c in label.split(","))
            raise InvariantError(f"{table}: {values[i]} in column {column} of row {where}; refusing to write "
                                 "a value the summaries do not define")


def by_year_frame(config, samples: dict) -> pd.DataFrame:
    """One row per (year, variable): mean with its stderr and the quantiles 1..99 over the paths where the variable
    is defined, and ``n_undefined``, the number of the others (gross margin in a year without revenue)."""
    records = []
    undefined = []
    for y in config.years:
        for var in YEARLY:
            sample = samples[f"{var}_{y}"]
            m = mean_of(sample) if var == UNDEFINED_VAR else stats.mean(sample)
            rec = {"year": y, "variable": var, "mean": m.value, "mean_stderr": m.stderr}
            rec.update({qname(q): (quantile_of if var == UNDEFINED_VAR else stats.quantile)(sample, q).value
                        for q in QUANTILES})
            missing = n_undefined(sample) if var == UNDEFINED_VAR else 0
            rec["n_undefined"] = missing
            records.append(rec)
            undefined.append(var == UNDEFINED_VAR and n_defined(sample) < MIN_PATHS)
    frame = pd.DataFrame.from_records(records).astype({"year": "int16", "variable": "string", "n_undefined": "int64"})
    check_finite("by_year", frame, np.array(undefined), "year,variable")
    return frame


STEP_QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)


def step_end_dates(config, spy: int, n_steps: int) -> list[dt.date]:
    """Last day of each step (the day before the next one starts): the dates of ``by_step``, of ``first_shortfall``
    in ``paths/`` and of ``simulator replay``, all from here."""
    start = config.simulation.start_year
    out = []
    for k in range(n_steps):
        year, part = divmod(k + 1, spy)
        out.append(dt.date(start + year, 1 + 12 * part // spy, 1) - dt.timedelta(days=1))
    return out


def by_step_frame(config, spy: int, steps: np.ndarray, weights: np.ndarray | None = None) -> pa.Table:
    """One row per (step, variable) from ``engine.trace_steps``'s (paths, steps, vars) array: mean and
    quantiles 5..95 over the traced paths (``paths``: how many, those with a defined value: all but for the gross
    margin, see UNDEFINED_VAR). With the paths' ``weights`` (a posterior run), weighted means and quantiles
    (``samples.WeightedSample``)."""
    n_steps = steps.shape[1]
    dates = step_end_dates(config, spy, n_steps)
    cols: dict[str, list] = {"step": [], "date": [], "variable": [], "mean": [],
                             **{qname(q): [] for q in STEP_QUANTILES}, "paths": []}
    for k in range(n_steps):
        for v, var in enumerate(kernel.STEP_VARS):
            x = steps[:, k, v]
            w = weights
            if var == UNDEFINED_VAR:  # only the gross margin may be undefined: any other NaN is refused below
                w = None if weights is None else weights[np.isfinite(x)]
                x = x[np.isfinite(x)]
            if w is not None and x.size:
                weighted = WeightedSample(x, w)
                qs = np.array([weighted.at(q) for q in STEP_QUANTILES])
                mean = weighted.total / weighted.n
            else:
                qs = np.quantile(x, STEP_QUANTILES) if x.size else np.full(len(STEP_QUANTILES), np.nan)
                mean = float(x.mean()) if x.size else np.nan
            cols["step"].append(k)
            cols["date"].append(dates[k])
            cols["variable"].append(var)
            cols["mean"].append(mean)
            for q, value in zip(STEP_QUANTILES, qs):
                cols[qname(q)].append(float(value))
            cols["paths"].append(int(x.size))
    types = {"step": pa.int32(), "date": pa.date32(), "variable": pa.string(), "paths": pa.int64()}
    # A step's gross margin is undefined on a path without revenue in the step; "paths" counts the others.
    undefined = (np.array(cols["variable"]) == UNDEFINED_VAR) & (np.array(cols["paths"]) < MIN_PATHS)
    check_finite("by_step", pd.DataFrame(cols), undefined, "step,variable")
    return pa.table({name: pa.array(values, type=types.get(name, pa.float64())) for name, values in cols.items()})


def max_rank_error(samples: dict) -> float:
    """Largest rank error of any quantile the summaries report (0 when every path was kept), of the defined
    values (see UNDEFINED_VAR)."""
    parts = [p for p in map(defined, samples.values()) if p is not None]
    return max(stats.quantile_rank_error(s, q) for s in parts for q in (*QUANTILES, 0.05))


def first_shortfall_dates(config, spy: int, steps: np.ndarray) -> pa.Array:
    """Last day of the first step in shortfall (null when none)."""
    # The last day of each step in days since 1970-01-01, looked up per path.
    ends = np.array([(d - dt.date(1970, 1, 1)).days for d in step_end_dates(config, spy, len(config.years) * spy)],
                    dtype=np.int32)
    shortfall = steps >= 0
    return pa.array(ends[np.where(shortfall, steps, 0).astype(np.int64)], type=pa.date32(), mask=~shortfall)


def paths_table(model, theta: np.ndarray, annual: np.ndarray, scalars: np.ndarray, first_id: int = 0,
                weights: np.ndarray | None = None) -> pa.Table:
    """One row per path of the kernel's outputs for path ids ``first_id ..``: docs/model.md plus end-of-year
    cash and compute spend; ``model.parameters`` names the columns of ``theta``. A posterior run's rows have
    their likelihood ``weight`` (relative: a weighted mean is sum(weight * x) / sum(weight))."""
    config, spy, years = model.config, model.steps_per_year, model.years
    scalar = {name: scalars[:, i] for i, name in enumerate(kernel.SCALAR_VARS)}
    cols: dict[str, pa.Array | np.ndarray] = {"path_id": np.arange(first_id, first_id + len(scalars), dtype=np.int64)}
    if weights is not None:
        cols["weight"] = weights
    for j, name in enumerate(model.parameters):
        cols[name] = theta[:, j]
    values = dict(zip(model.variables, variables(model, annual, scalars)))
    for var in YEARLY:
        for y in years:
            cols[f"{var}_{y}"] = values[f"{var}_{y}"]
    for name in ("cash_end", "lowest_cash", "funding_gap"):
        cols[name] = scalar[name]
    cols["first_shortfall"] = first_shortfall_dates(config, spy, scalar["first_shortfall_step"])
    positive = annual[:, kernel.A_FCF] > 0
    cols["breakeven_year"] = pa.array(np.asarray(years, dtype=np.int16)[np.argmax(positive, axis=1)],
                                      mask=~positive.any(axis=1))
    cols["compute_spend_total"] = values["compute_spend_total"]
    cols["raised_total"] = scalar["raised_scheduled"] + scalar["raised_contingent"]
    for name in ("raised_scheduled", "raised_contingent", "credit_drawn_max", "credit_outstanding_end"):
        cols[name] = scalar[name]
    cols["n_raises"] = scalar["n_raises"].astype(np.int32)
    for name, v in COMPUTE_YEARLY:
        for j, y in enumerate(years):
            cols[f"{name}_{y}"] = annual[:, v, j]
    for j, y in enumerate(years):  # 1 - (COGS + idle - resale) / revenue; NaN without revenue, as the gross margin
        rev = annual[:, kernel.A_REV, j]
        spent = annual[:, kernel.A_COGS, j] + annual[:, kernel.A_IDLE, j] - annual[:, kernel.A_RESALE, j]
        with np.errstate(all="ignore"):
            cols[f"compute_margin_{y}"] = np.where(rev > 0, 1.0 - spent / np.where(rev > 0, rev, 1.0), np.nan)
    cols["committed_after_end"] = np.full(len(scalars), committed_after_end(config))
    return pa.table(cols)


def headline_metrics(config) -> list[str]:
    """The figures printed after a run and by `simulator show`, in order."""
    end = config.simulation.end_year
    return [f"p_fcf_positive_{end}", *(f"p_shortfall_by_{y}" for y in config.years),
            f"p_revenue_{end}_at_least_plan", f"p_compute_spend_within_{config.plan.compute_total:g}",
            f"revenue_{end}_q05", f"revenue_{end}_q50", f"revenue_{end}_q95",
            f"fcf_{end}_q05", f"fcf_{end}_q50", f"fcf_{end}_q95", f"gross_margin_{end}_q50",
            "funding_gap_q50", "funding_gap_q95", "funding_gap_es95",
            f"cfar95_{end}_vs_expected", f"cfar95_{end}_vs_plan",
            f"p_idle_compute_over_{IDLE_THRESHOLD:g}_by_{end}", "compute_spend_total_q50"]


HISTOGRAM_BINS = 80     # bins a variable of histograms.parquet
HISTOGRAM_TAIL = 0.001  # the share of the paths beyond the bins' range, each side, counted in the end bins


def histogram_edges(lowest: float, highest: float, log: bool = False) -> np.ndarray:
    """HISTOGRAM_BINS + 1 edges from ``lowest`` to ``highest``, evenly spaced (in logs where ``log``); two
    edges around a single value when they are equal."""
    if not highest > lowest:
        return np.array([lowest * 0.9, highest * 1.1]) if log else np.array([lowest - 0.5, highest + 0.5])
    return (np.geomspace if log else np.linspace)(lowest, highest, HISTOGRAM_BINS + 1)


def _binned(sample, edges: np.ndarray, before: int) -> np.ndarray:
    """Paths of ``sample`` in each bin (a value equal to an inner edge counts in the bin left of it): the
    first bin holds every value from rank ``before`` up to its right edge, the last every value above its
    left edge."""
    inner = [sample.below(float(x))[0] for x in edges[1:-1]]
    # A weighted sample counts in effective paths (floats): rounded cumulative counts keep the total.
    return np.diff(np.rint(np.array([before, *inner, sample.n], dtype=float)).astype(np.int64))


def _rank(n: int, share: float) -> int:
    return min(n - 1, max(0, int(share * (n - 1))))


def histogram_frame(config, samples: dict) -> pa.Table:
    """``histograms.parquet``: the last year's FCF over every path and the funding gap over the paths with a gap
    (a shortfall), in HISTOGRAM_BINS bins each, counted from the run's samples (every value, or the streamed
    histograms: then to within a fine bin, ``quantile_rank_error_max``). Each range leaves out HISTOGRAM_TAIL
    of the paths at either end (the gap's top: none), which the end bins hold: the counts add up to every
    path, or to every path with a gap. A posterior run's counts are of effective paths (weighted: see
    ``samples.WeightedSample``)."""
    end = config.simulation.end_year
    fcf, gap = samples[f"fcf_{end}"], samples["funding_gap"]
    parts = []
    edges = histogram_edges(fcf.value_at(_rank(fcf.n, HISTOGRAM_TAIL)),
                            fcf.value_at(_rank(fcf.n, 1 - HISTOGRAM_TAIL)))
    parts.append((f"fcf_{end}", edges, _binned(fcf, edges, 0)))
    no_gap = round(gap.below(0.0)[0])
    short = gap.n - no_gap
    if short:
        top = gap.value_at(gap.n - 1)
        if isinstance(gap, HistogramSample):  # the greatest value, where it lies at or above the last edge
            top = max(top, float(gap.tail_max))
        lowest = gap.value_at(no_gap + _rank(short, HISTOGRAM_TAIL))
        edges = histogram_edges(max(lowest, top * 1e-6), top, log=True)
        parts.append(("funding_gap", edges, _binned(gap, edges, no_gap)))
    cols: dict[str, list] = {"variable": [], "bin": [], "left": [], "right": [], "paths": []}
    for name, edges, counts in parts:
        cols["variable"] += [name] * len(counts)
        cols["bin"] += list(range(len(counts)))
        cols["left"] += edges[:-1].tolist()
        cols["right"] += edges[1:].tolist()
        cols["paths"] += counts.tolist()
    types = {"variable": pa.string(), "bin": pa.int32(), "left": pa.float64(), "right": pa.float64(),
             "paths": pa.int64()}
    return pa.table({name: pa.array(values, type=types[name]) for name, values in cols.items()})
