"""Analyses of finished runs: sensitivity, paired comparison, scenario discovery (PRIM), solving.

* :func:`sensitivity`: for every drawn parameter, Spearman rank correlations with the last year's
  FCF and with the funding gap, and the outcome probabilities in the parameter's bottom and top
  deciles (the numbers behind a tornado chart), each with a standard error.
* :func:`compare`: paired differences B - A of headline figures between two runs with the same
  seed and path count (common random numbers), with paired and unpaired standard errors.
* :func:`prim` / :func:`discover`: Friedman & Fisher's PRIM peeling, a box of one to a few
  parameter intervals where an outcome is concentrated ("what must be true").
* :func:`solve`: bisection over common random numbers for the value of a fixed config parameter
  that makes a summary metric hit a target.

No command-line code here: :mod:`simulator.cli` formats what these functions return.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import __version__
from .api import run
from .config import Config, ConfigError, load_config, validate
from .defaults import OUTCOMES
from .errors import SettingsError
from .model import drawn_parameters
from .results import ACTUALS, Results, ResultsError, weighted_resample, write_parquet
from .stats import Z95
from .storage import Location

SENSITIVITY_FILE = "sensitivity.parquet"
MIN_Z = 3.0  # PRIM keeps a restriction only if the paths it excludes are this many stderrs less affected


# ---------------------------------------------------------------- shared helpers


def run_config(results: Results, folder: str | Path = "run") -> Config:
    """The validated config a run was made with (from its metadata)."""
    return validate(results.metadata["config"], source=f"{folder}/manifest.json")


def _paths_of(results: Results, folder, need_all: bool = False, weighted: bool = False) -> tuple[pd.DataFrame, bool]:
    """The per-path rows sorted by path id, and whether they are every path of the run. A posterior run's rows
    (a ``weight`` column) come as :func:`weighted_resample` of them, unless the caller reads the ``weighted``
    rows themselves."""
    paths = results.paths
    n_paths = results.metadata["n_paths"]
    if paths is None or len(paths) == 0:
        raise ResultsError(f"{folder}: the run kept no per-path rows (its paths/ dataset is empty); "
                           "rerun it with --keep-paths all")
    complete = len(paths) == n_paths
    if need_all and not complete:
        raise ResultsError(f"{folder}: the run kept {len(paths):,} of {n_paths:,} paths; "
                           "rerun it with --keep-paths all")
    paths = paths.sort_values("path_id", kind="stable").reset_index(drop=True)
    if "weight" in paths.columns and not weighted:
        paths = weighted_resample(paths, results.metadata["seed"])
    return paths, complete



def outcome_indicators(paths: pd.DataFrame, config: Config) -> dict[str, np.ndarray]:
    """Per-path booleans of the binary outcomes, named like the summary metrics."""
    end = config.simulation.end_year
    shortfall = paths["first_shortfall"].notna().to_numpy()
    return {f"p_fcf_positive_{end}": (paths[f"fcf_{end}"] > 0).to_numpy(),
            f"p_shortfall_by_{end}": shortfall}


def _binomial(hits: np.ndarray) -> tuple[float, float]:
    n = hits.size
    if n == 0:
        return math.nan, math.nan
    p = float(np.count_nonzero(hits)) / n
    return p, math.sqrt(p * (1 - p) / n)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks 1..n (ties share their mean rank), as Spearman's coefficient needs."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], n]
    ranks = np.empty(n)
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]
    return ranks


def _centred_ranks(values: np.ndarray) -> np.ndarray:
    r = _ranks(values)
    return r - r.mean()


def _rank_correlation(rx: np.ndarray, ry: np.ndarray) -> tuple[float, float]:
    """Spearman's rho from centred ranks, with its standard error (see :func:`spearman`)."""
    n = len(rx)
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if n < 4 or denom == 0:
        return math.nan, math.nan
    rho = float(rx @ ry) / denom
    return rho, (1 - rho * rho) * math.sqrt(1.06 / (n - 3))


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rank correlation and its standard error.

    The standard error comes from Fisher's z = atanh(rho) with Fieller, Hartley & Pearson's
    variance 1.06 / (n - 3), mapped back to rho by the delta method: se = (1 - rho^2) sqrt(1.06 / (n - 3)).
    A constant input gives nan.
    """
    return _rank_correlation(_centred_ranks(x), _centred_ranks(y))


# ---------------------------------------------------------------- sensitivity


@dataclass
class Sensitivity:
    """One row per drawn parameter, ranked; ``complete`` is False when the run kept a sample of paths."""

    table: pd.DataFrame
    n_used: int
    n_paths: int
    end_year: int

    @property
    def complete(self) -> bool:
        return self.n_used == self.n_paths


def sensitivity(results: Results, folder: str | Path = "run") -> Sensitivity:
    """Rank correlations and decile swings of every drawn parameter (see the module docstring).

    Rows are ranked by |swing| of P(shortfall by the end), then by |swing| of P(FCF > 0) and
    |rho| with FCF. Swing = P(outcome | top decile of the parameter) - P(outcome | bottom decile);
    its standard error treats the two deciles (disjoint sets of independent paths) as independent.
    The correlations are marginal: a parameter correlated with a driver (``parameter_correlation``)
    shows part of that driver's effect.
    """
    config = run_config(results, folder)
    paths, _ = _paths_of(results, folder)
    end = config.simulation.end_year
    params = drawn_parameters(config)
    missing = [k for k in params if k not in paths.columns]
    if missing:
        raise ResultsError(f"{folder}/paths: no column for drawn parameter {missing[0]}")
    if not params:
        raise SettingsError(f"{folder}: the config draws no parameter (every parameter is fixed); nothing to rank")
    r_fcf = _centred_ranks(paths[f"fcf_{end}"].to_numpy())
    r_gap = _centred_ranks(paths["funding_gap"].to_numpy())
    outcomes = outcome_indicators(paths, config)
    rows = []
    for key in params:
        x = paths[key].to_numpy()
        lo, hi = np.quantile(x, [0.1, 0.9])
        bottom, top = x <= lo, x >= hi
        row: dict[str, float | int | str] = {"parameter": key}
        rx = _centred_ranks(x)
        row[f"rho_fcf_{end}"], row[f"rho_fcf_{end}_se"] = _rank_correlation(rx, r_fcf)
        row["rho_funding_gap"], row["rho_funding_gap_se"] = _rank_correlation(rx, r_gap)
        for name, hits in outcomes.items():
            pb, sb = _binomial(hits[bottom])
            pt, st = _binomial(hits[top])
            row.update({f"{name}_bottom": pb, f"{name}_bottom_se": sb, f"{name}_top": pt, f"{name}_top_se": st,
                        f"{name}_swing": pt - pb, f"{name}_swing_se": math.hypot(sb, st)})
        row.update({"bottom_decile_max": float(lo), "top_decile_min": float(hi),
                    "n_bottom": int(bottom.sum()), "n_top": int(top.sum())})
        rows.append(row)
    table = pd.DataFrame(rows)
    order = np.lexsort((-table[f"rho_fcf_{end}"].abs().fillna(0).to_numpy(),
                        -table[f"p_fcf_positive_{end}_swing"].abs().fillna(0).to_numpy(),
                        -table[f"p_shortfall_by_{end}_swing"].abs().fillna(0).to_numpy()))
    table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1, dtype=np.int32))
    table = table.astype({"parameter": "string", "n_bottom": "int64", "n_top": "int64"})
    return Sensitivity(table, len(paths), results.metadata["n_paths"], end)


def write_sensitivity(folder: str | Path, result: Sensitivity, metadata: dict) -> Location:
    """Write ``sensitivity.parquet`` into the run folder (a local folder or a URL, atomically) with the run's
    metadata.

    The manifest is left alone: it lists the run's own files, which stay valid.
    """
    path = Location(folder) / SENSITIVITY_FILE
    meta = {**metadata, "analysis": {"name": "sensitivity", "paths_used": result.n_used,
                                     "paths_complete": result.complete, "simulator_version": __version__}}
    write_parquet(path, result.table, meta)
    return path


# ---------------------------------------------------------------- paired comparison


@dataclass
class Comparison:
    """Paired differences B - A, one row per figure; ``notes`` explains anything that weakens the pairing."""

    table: pd.DataFrame
    n_paths: int
    seed: int
    notes: list[str] = field(default_factory=list)


def _headline_per_path(paths: pd.DataFrame, config: Config) -> dict[str, np.ndarray]:
    """Per-path values whose means are the compared figures (indicators for probabilities)."""
    end = config.simulation.end_year
    first = pd.to_datetime(paths["first_shortfall"])
    year = first.dt.year.to_numpy(dtype=float, na_value=np.nan)
    out = {f"p_fcf_positive_{end}": (paths[f"fcf_{end}"] > 0).to_numpy(float)}
    for y in config.years:
        out[f"p_shortfall_by_{y}"] = (year <= y).astype(float)  # nan (never) compares False
    out[f"p_revenue_{end}_at_least_plan"] = (paths[f"revenue_{end}"] >= config.plan.revenue[str(end)]).to_numpy(float)
    out[f"revenue_{end}_mean"] = paths[f"revenue_{end}"].to_numpy(float)
    out[f"fcf_{end}_mean"] = paths[f"fcf_{end}"].to_numpy(float)
    out["funding_gap_mean"] = paths["funding_gap"].to_numpy(float)
    return out


def compare(a: Results, b: Results, folder_a: str | Path = "A", folder_b: str | Path = "B") -> Comparison:
    """Paired differences B - A of the headline figures, path by path.

    Both runs must have the same seed and path count and keep every path: path k of both then
    starts from the same random numbers, so the per-path differences have a much smaller spread
    than the runs themselves. ``se_paired`` = sd(B_k - A_k) / sqrt(n); ``se_unpaired`` =
    sqrt(se_A^2 + se_B^2), the error two independent runs would have; the interval is
    diff +- 1.96 se_paired.
    """
    ma, mb = a.metadata, b.metadata
    if ma["seed"] != mb["seed"]:
        raise SettingsError(f"{folder_a} has seed {ma['seed']} and {folder_b} seed {mb['seed']}: "
                            "a paired comparison needs the same seed (rerun one with --seed)")
    if ma["n_paths"] != mb["n_paths"]:
        raise SettingsError(f"{folder_a} has {ma['n_paths']:,} paths and {folder_b} {mb['n_paths']:,}: "
                            "a paired comparison needs the same path count")
    cfg_a, cfg_b = run_config(a, folder_a), run_config(b, folder_b)
    if cfg_a.years != cfg_b.years:
        raise SettingsError(f"{folder_a} simulates {cfg_a.years[0]}..{cfg_a.years[-1]} and {folder_b} "
                            f"{cfg_b.years[0]}..{cfg_b.years[-1]}: the runs must cover the same years")
    pa_, _ = _paths_of(a, folder_a, need_all=True, weighted=True)
    pb_, _ = _paths_of(b, folder_b, need_all=True, weighted=True)
    actuals_a, actuals_b = ma.get(ACTUALS), mb.get(ACTUALS)
    if actuals_a is not None and actuals_b is not None and actuals_a["sha256"] != actuals_b["sha256"]:
        raise SettingsError(f"{folder_a} is updated on {actuals_a['file']} and {folder_b} on {actuals_b['file']}: "
                            "compare runs updated on the same figures, or a run with its prior")
    notes = []
    drawn_a, drawn_b = drawn_parameters(cfg_a), drawn_parameters(cfg_b)
    if drawn_a != drawn_b:
        diff = sorted(set(drawn_a) ^ set(drawn_b)) or ["(order)"]
        notes.append(f"the runs draw different parameters ({', '.join(diff)}): paths share the seed but not all "
                     "their random numbers, so the pairing gains less; the paired errors remain valid")
    if ma["simulator_version"] != mb["simulator_version"]:
        notes.append(f"the runs were made by simulator {ma['simulator_version']} and {mb['simulator_version']}: "
                     "their paths may not share random numbers, so the pairing may gain nothing; the paired errors "
                     "remain valid")
    if ma["steps_per_year"] != mb["steps_per_year"]:
        notes.append("the runs use different steps per year: their shocks differ path by path")
    va, vb = _headline_per_path(pa_, cfg_a), _headline_per_path(pb_, cfg_b)
    n = len(pa_)
    wa, wb = (p["weight"].to_numpy() if "weight" in p.columns else None for p in (pa_, pb_))
    if wa is not None or wb is not None:
        notes.append("weighted by reported figures: each side's figures are weighted means, their errors those of "
                     "the effective paths (delta method, path by path)")
    rows = []
    for name in va:
        xa, xb = va[name], vb[name]
        if wa is None and wb is None:
            d = xb - xa
            se_paired = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
            se_a = float(xa.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
            se_b = float(xb.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
            if name.startswith("p_"):  # binomial errors, as in the summaries
                se_a = math.sqrt(xa.mean() * (1 - xa.mean()) / n)
                se_b = math.sqrt(xb.mean() * (1 - xb.mean()) / n)
            mean_a, mean_b = float(xa.mean()), float(xb.mean())
        else:
            (mean_a, infl_a), (mean_b, infl_b) = _weighted_mean(xa, wa), _weighted_mean(xb, wb)
            se_paired = math.sqrt(float(np.sum((infl_b - infl_a) ** 2))) / n
            se_a, se_b = (math.sqrt(float(np.sum(i * i))) / n for i in (infl_a, infl_b))
        diff = mean_b - mean_a
        rows.append({"metric": name, "a": mean_a, "b": mean_b, "diff": diff,
                     "se_paired": se_paired, "se_unpaired": math.hypot(se_a, se_b),
                     "ci_low": diff - Z95 * se_paired, "ci_high": diff + Z95 * se_paired})
    table = pd.DataFrame(rows).astype({"metric": "string"})
    return Comparison(table, n, ma["seed"], notes)


def _weighted_mean(x: np.ndarray, w: np.ndarray | None) -> tuple[float, np.ndarray]:
    """The mean of ``x`` weighted by ``w`` (None: equal weights) and each path's influence on it, scaled as a
    plain mean's (n w_i / sum w (x_i - mean)): the standard error of a sum of such estimates over the same paths
    is sqrt(sum of the summed influences squared) / n."""
    w = np.ones_like(x) if w is None else w
    total = float(np.sum(w))
    mean = float(np.sum(w * x)) / total
    return mean, len(x) * w / total * (x - mean)


def write_table(path: str | Path, frame: pd.DataFrame, metadata: dict) -> Path:
    """Write a DataFrame as Parquet, atomically, with JSON ``metadata`` under the key ``simulator``."""
    path = Path(path)
    if path.is_dir():
        raise SettingsError(f"{path}: is a folder; give a file name such as {path / 'compare.parquet'}")
    if not path.parent.is_dir():
        raise SettingsError(f"{path}: folder {path.parent} does not exist")
    write_parquet(path, frame, metadata)
    return path


def comparison_metadata(a: Results, b: Results, folder_a, folder_b) -> dict:
    def side(r: Results, folder) -> dict:
        m = r.metadata
        return {"folder": str(folder), "config_name": m.get("config_name"), "config_hash": m["config_hash"]}
    return {"analysis": "compare", "simulator_version": __version__, "seed": a.metadata["seed"],
            "n_paths": a.metadata["n_paths"], "a": side(a, folder_a), "b": side(b, folder_b)}


# ---------------------------------------------------------------- PRIM


@dataclass
class Box:
    """Interval conditions ``low <= x <= high`` on named columns (an open side is +-inf)."""

    bounds: dict[str, tuple[float, float]]

    def contains(self, frame: pd.DataFrame) -> np.ndarray:
        inside = np.ones(len(frame), dtype=bool)
        for key, (lo, hi) in self.bounds.items():
            x = frame[key].to_numpy()
            inside &= (x >= lo) & (x <= hi)
        return inside

    def conditions(self, digits: int = 4) -> str:
        """E.g. ``compute.price_drift >= -0.25 and revenue.consumer.growth_initial <= 0.68``."""
        parts = []
        for key, (lo, hi) in self.bounds.items():
            if math.isfinite(lo) and math.isfinite(hi):
                parts.append(f"{lo:.{digits}g} <= {key} <= {hi:.{digits}g}")
            elif math.isfinite(lo):
                parts.append(f"{key} >= {lo:.{digits}g}")
            elif math.isfinite(hi):
                parts.append(f"{key} <= {hi:.{digits}g}")
        return " and ".join(parts) or "(every path)"


@dataclass
class BoxStats:
    """How well a box describes an outcome on some paths; each figure with its binomial stderr."""

    n: int
    n_outcome: int
    n_inside: int
    coverage: float       # share of outcome paths inside the box
    coverage_se: float
    density: float        # share of in-box paths with the outcome
    density_se: float
    base_rate: float      # share of all paths with the outcome
    base_rate_se: float
    support: float        # share of all paths inside the box

    @property
    def lift(self) -> float:
        return self.density / self.base_rate if self.base_rate > 0 else math.nan


def box_stats(box: Box, frame: pd.DataFrame, y: np.ndarray) -> BoxStats:
    y = np.asarray(y, dtype=bool)
    inside = box.contains(frame)
    cov, cov_se = _binomial(inside[y])
    dens, dens_se = _binomial(y[inside])
    base, base_se = _binomial(y)
    return BoxStats(len(y), int(y.sum()), int(inside.sum()), cov, cov_se, dens, dens_se, base, base_se,
                    float(inside.mean()) if len(y) else math.nan)


@dataclass
class PrimResult:
    box: Box                  # after pruning to the restrictions that matter
    peeled: Box               # the box at the end of peeling, every restriction
    trajectory: pd.DataFrame  # step, coverage, density, support after each peel


def prim(frame: pd.DataFrame, y: np.ndarray, *, alpha: float = 0.05, min_coverage: float = 0.5,
         max_params: int = 3) -> PrimResult:
    """Friedman & Fisher's PRIM: peel, then keep the restrictions that matter most.

    Peeling: at each step, for every column and side, remove the ``alpha`` share of the points
    still in the box with the smallest (or largest) values, and keep the one peel that leaves the
    highest density of ``y``; stop when the best peel would leave fewer than ``min_coverage`` of
    the outcome points in the box, or would not raise the density. Pruning, one step at a time:
    drop a bound (one side of one column) whose excluded points are not significantly less
    affected than the box (the two-sample binomial z-score under ``MIN_Z``, weakest first); then,
    while more than ``max_params`` columns are restricted, drop the column whose removal lowers
    the density least.
    """
    if not 0 < alpha < 0.5:
        raise SettingsError(f"alpha = {alpha}: expected a peeling share in (0, 0.5)")
    if not 0 < min_coverage <= 1:
        raise SettingsError(f"min_coverage = {min_coverage}: expected a share in (0, 1]")
    if max_params < 1:
        raise SettingsError(f"max_params = {max_params}: expected at least 1")
    y = np.asarray(y, dtype=bool)
    if len(y) != len(frame):
        raise ValueError(f"{len(y)} outcomes for {len(frame)} rows")
    n_y = int(y.sum())
    if n_y == 0 or n_y == len(y):
        raise SettingsError(f"the outcome {'never' if n_y == 0 else 'always'} happens in these {len(y):,} paths; "
                            "there is nothing to discover")
    columns = list(frame.columns)
    values = frame.to_numpy(dtype=float)
    lows = np.full(len(columns), -np.inf)
    highs = np.full(len(columns), np.inf)
    idx = np.arange(len(y))
    density = n_y / len(y)
    steps = [(0, 1.0, density, 1.0)]
    while len(idx) > 1:
        y_in = y[idx]
        m = len(idx)
        k = max(1, int(alpha * m))
        best = None  # (density, coverage, column, side, threshold, keep)
        for j in range(len(columns)):
            v = values[idx, j]
            part = np.partition(v, (k, m - 1 - k))
            for side, thr in (("low", part[k]), ("high", part[m - 1 - k])):
                keep = v >= thr if side == "low" else v <= thr
                n_keep = int(keep.sum())
                if n_keep == m or n_keep == 0:
                    continue  # ties: this peel removes nothing (or everything)
                hits = int(np.count_nonzero(y_in & keep))
                cov, dens = hits / n_y, hits / n_keep
                if cov < min_coverage:
                    continue
                if best is None or dens > best[0]:
                    best = (dens, cov, j, side, thr, keep)
        if best is None or best[0] <= density:
            break
        density, cov, j, side, thr, keep = best
        if side == "low":
            lows[j] = thr
        else:
            highs[j] = thr
        idx = idx[keep]
        steps.append((len(steps), cov, density, len(idx) / len(y)))
    trajectory = pd.DataFrame(steps, columns=["step", "coverage", "density", "support"])
    peeled = Box({columns[j]: (float(lows[j]), float(highs[j])) for j in range(len(columns))
                  if np.isfinite(lows[j]) or np.isfinite(highs[j])})

    def relax(bounds: dict, key: str, side: str | None) -> dict:
        """``bounds`` without ``key``'s low or high side (or both when ``side`` is None)."""
        out = {k: v for k, v in bounds.items() if k != key}
        lo, hi = bounds[key]
        lo, hi = (-math.inf if side in ("low", None) else lo), (math.inf if side in ("high", None) else hi)
        if math.isfinite(lo) or math.isfinite(hi):
            out[key] = (lo, hi)
        return out

    def effect(bounds: dict, relaxed_bounds: dict) -> tuple[float, float]:
        """Relaxing ``bounds``: the density lost, and the z-score of "the paths it lets in have a
        lower outcome rate than the box" (two-sample binomial)."""
        inside = Box(bounds).contains(frame)
        relaxed = Box(relaxed_bounds).contains(frame)
        added = relaxed & ~inside
        n_in, n_add = int(inside.sum()), int(added.sum())
        d_in = float(y[inside].mean()) if n_in else 0.0
        if n_add == 0:
            return 0.0, 0.0
        d_add = float(y[added].mean())
        var = (d_in * (1 - d_in) / n_in if n_in else 0.0) + d_add * (1 - d_add) / n_add
        z = (d_in - d_add) / math.sqrt(var) if var > 0 else (math.inf if d_in > d_add else 0.0)
        return d_in - float(y[relaxed].mean()), z

    bounds = dict(peeled.bounds)
    while bounds:
        sides = [(k, side) for k, (lo, hi) in bounds.items()
                 for side, edge in (("low", lo), ("high", hi)) if math.isfinite(edge)]
        z = {ks: effect(bounds, relax(bounds, *ks))[1] for ks in sides}
        weakest = min(z, key=z.__getitem__)
        if z[weakest] < MIN_Z:
            bounds = relax(bounds, *weakest)  # the paths it excludes are not significantly less affected
        elif len(bounds) > max_params:
            loss = {k: effect(bounds, relax(bounds, k, None))[0] for k in bounds}
            bounds = relax(bounds, min(loss, key=loss.__getitem__), None)
        else:
            break
    # Keep the restrictions in the order of their importance (largest density loss when removed first).
    if len(bounds) > 1:
        loss = {k: effect(bounds, relax(bounds, k, None))[0] for k in bounds}
        bounds = {k: bounds[k] for k in sorted(bounds, key=loss.__getitem__, reverse=True)}
    return PrimResult(Box(bounds), peeled, trajectory)


@dataclass
class Discovery:
    outcome: str
    description: str
    box: Box
    fit: BoxStats      # on the paths the box was found on (optimistic)
    test: BoxStats     # on the held-out paths (the honest figures)
    complete: bool     # every path of the run was used
    n_paths: int
    trajectory: pd.DataFrame


def outcome_of(name: str, paths: pd.DataFrame, config: Config) -> tuple[np.ndarray, str]:
    end = config.simulation.end_year
    if name == "shortfall":
        return paths["first_shortfall"].notna().to_numpy(), f"cash under min_cash by the end of {end}"
    if name == "fcf_negative":
        return (paths[f"fcf_{end}"] <= 0).to_numpy(), f"FCF in {end} <= 0"
    raise SettingsError(f"outcome {name!r}: expected one of {', '.join(OUTCOMES)}")


def discover(results: Results, outcome: str, *, max_params: int = 3, min_coverage: float = 0.5,
             alpha: float = 0.05, folder: str | Path = "run") -> Discovery:
    """PRIM over the drawn parameters of a run, for ``outcome`` in :data:`OUTCOMES`.

    The box is found on the even path ids and its coverage and density are reported on the odd
    ones (held out), so their binomial standard errors are honest; the figures on the fitting
    half, which PRIM has optimised, are optimistic.
    """
    config = run_config(results, folder)
    paths, complete = _paths_of(results, folder)
    y, description = outcome_of(outcome, paths, config)
    params = drawn_parameters(config)
    if not params:
        raise SettingsError(f"{folder}: the config draws no parameter; there is nothing to discover")
    if len(paths) < 100:
        raise SettingsError(f"{folder}: {len(paths)} paths; PRIM needs at least 100")
    fit_rows = (paths["path_id"].to_numpy() % 2) == 0
    frame = paths[params]
    result = prim(frame[fit_rows].reset_index(drop=True), y[fit_rows], alpha=alpha,
                  min_coverage=min_coverage, max_params=max_params)
    test = frame[~fit_rows].reset_index(drop=True)
    return Discovery(outcome, description, result.box,
                     box_stats(result.box, frame[fit_rows].reset_index(drop=True), y[fit_rows]),
                     box_stats(result.box, test, y[~fit_rows]), complete, results.metadata["n_paths"],
                     result.trajectory)


# ---------------------------------------------------------------- solve


@dataclass
class Solution:
    key: str
    value: float          # the solution
    metric: str
    target: float
    estimate: float       # the metric at ``value``
    stderr: float         # its Monte Carlo standard error
    evaluations: int
    bracket: tuple[float, float]           # final bracket around the crossing
    history: list[tuple[float, float]]     # (value tried, metric there), in order
    seed: int
    n_paths: int
    value_se: float       # Monte Carlo error of the solution: stderr / |local slope of the metric|
    notes: list[str] = field(default_factory=list)


def parse_target(text: str) -> tuple[str, float]:
    """``"p_fcf_positive_2030=0.5"`` -> ("p_fcf_positive_2030", 0.5)."""
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise SettingsError(f"--target {text!r}: expected METRIC=VALUE, e.g. p_fcf_positive_2030=0.5") from None


def current_value(config: Config, key: str):
    """The config's setting at ``key``: a number, or ``None`` with the distribution's name."""
    params = config.parameters()
    if key in params:
        dist = params[key]
        return (float(dist.value), None) if dist.dist == "fixed" else (None, dist.dist)
    node = config.resolved()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"{key}: no such setting in the config")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, float):
        kind = "an integer" if isinstance(node, int) and not isinstance(node, bool) else f"{node!r}, not a number"
        raise ConfigError(f"{key} = {node!r}: solve varies a continuous parameter, this setting is {kind}")
    return node, None


def solve(config_path: str | Path | None, metric: str, target: float, key: str, *,
          low: float | None = None, high: float | None = None, n_paths: int = 100_000,
          seed: int | None = None, tol: float | None = None, overrides: tuple[str, ...] | list[str] = (),
          max_evaluations: int = 60,
          on_evaluation: Callable[[float, float], None] | None = None) -> Solution:
    """The value of config parameter ``key`` at which ``metric`` equals ``target``, by bisection.

    Every evaluation runs the same seed and path count (common random numbers), so the metric is
    a deterministic function of ``key`` and bisection converges. The bracket defaults to +-50%
    around the config's value when it is a fixed number; a distribution needs ``low`` and
    ``high`` (the parameter is then fixed at each value tried). Stops when the bracket is
    narrower than ``tol`` (default: 1/1000 of the initial bracket) and returns the bracket end
    whose metric is nearer the target.
    """
    base = load_config(config_path, list(overrides))
    seed = base.simulation.seed if seed is None else seed
    value, dist = current_value(base, key)
    if low is None or high is None:
        if dist is not None:
            raise SettingsError(f"{key} is a distribution ({dist}) in this config; pass --low and --high "
                                f"(it will be fixed at each value tried)")
        if value == 0:
            raise SettingsError(f"{key} = 0 in this config, so the default bracket +-50% is empty; "
                                "pass --low and --high")
        a, b = sorted((value * 0.5, value * 1.5))
        low = a if low is None else low
        high = b if high is None else high
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise SettingsError(f"bracket [{low:g}, {high:g}] for {key}: expected finite --low < --high")
    tol = (high - low) / 1000 if tol is None else tol
    if tol <= 0:
        raise SettingsError(f"--tol {tol:g}: expected a positive tolerance")
    notes = _fixing_drops_correlation(base, key)

    history: list[tuple[float, float]] = []
    errors: dict[float, float] = {}

    def evaluate(x: float) -> float:
        cfg = load_config(config_path, [*overrides, f"{key}={float(x)!r}"])
        res = run(cfg, n_paths, seed)
        try:
            row = res.metric(metric)
        except KeyError:
            names = ", ".join(m for m in res.summary["metric"] if m.startswith("p_"))
            raise SettingsError(f"--target: no metric {metric!r} in the summary (`simulator show DIR --all` lists "
                                f"them); its probabilities are: {names}") from None
        history.append((x, float(row.value)))
        errors[x] = float(row.stderr)
        if on_evaluation:
            on_evaluation(x, float(row.value))
        return float(row.value)

    f_low, f_high = evaluate(low), evaluate(high)
    if not min(f_low, f_high) <= target <= max(f_low, f_high):
        raise SettingsError(f"{metric} is {f_low:.6g} at {key}={low:g} and {f_high:.6g} at {key}={high:g}; "
                            f"the target {target:g} is not between them: widen --low/--high")
    lo, hi = (low, f_low), (high, f_high)
    while hi[0] - lo[0] > tol and len(history) < max_evaluations and lo[1] != target and hi[1] != target:
        mid = 0.5 * (lo[0] + hi[0])
        f_mid = evaluate(mid)
        if (f_mid - target) * (lo[1] - target) > 0:
            lo = (mid, f_mid)
        else:
            hi = (mid, f_mid)
    best = min((lo, hi), key=lambda p: abs(p[1] - target))
    # The local slope from the evaluations within 1/8 of the initial bracket of the solution; where the search
    # ended before it had three there (the target hit exactly), from the nearest evaluation on each side, a
    # coarser slope, and said so.
    near = [(x, f) for x, f in history if abs(x - best[0]) <= (high - low) / 8]
    if len(near) < 3:
        below = [p for p in history if p[0] < best[0]]
        above = [p for p in history if p[0] > best[0]]
        if below and above:
            near = [max(below), best, min(above)]
            notes.append(f"the Monte Carlo error of the solution comes from the metric's slope over "
                         f"[{near[0][0]:.6g}, {near[2][0]:.6g}], the nearest evaluations: a coarse estimate")
    slope = math.nan
    if len(near) >= 3 and np.ptp([x for x, _ in near]) > 0:
        slope = float(np.polyfit([x for x, _ in near], [f for _, f in near], 1)[0])
    value_se = errors[best[0]] / abs(slope) if slope and math.isfinite(slope) else math.nan
    return Solution(key, best[0], metric, target, best[1], errors[best[0]], len(history),
                    (min(lo[0], hi[0]), max(lo[0], hi[0])), history, seed, n_paths, value_se, notes)


def _fixing_drops_correlation(config: Config, key: str) -> list[str]:
    """A note when ``key``, fixed at each value tried, loses its rank correlations (the config drops
    correlations of fixed parameters)."""
    corr = config.parameter_correlation
    if key not in corr.names:
        return []
    i = corr.names.index(key)
    partners = [name for j, name in enumerate(corr.names) if j != i and corr.matrix[i][j] != 0]
    return [f"{key} is fixed at each value tried, so its rank correlation with {', '.join(partners)} "
            "is dropped"] if partners else []
