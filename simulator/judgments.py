"""Judgments: the fixed choices of a config, tested like the drawn parameters (model v2).

A config's ``[judgments.<name>]`` entries name a key and a low and a high alternative. ``simulator sensitivity
--judgments RUN`` re-runs the run's config at each alternative with the run's seed and path count, so path k
of every run starts from the same random numbers, and reports the paired change of the headline figures with
its paired standard error (``judgments.parquet``). A fixed number takes the alternative values; a schedule or a
drawn parameter is scaled (every year's value, or the whole distribution: each value x becomes f * x); a
correlation entry takes the alternative values on both sides of the matrix.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from .config import Config, ConfigError, Judgment, validate

# The fields of a distribution table that move with its values when it is scaled; a lognormal's mu moves by
# ln(f) instead, and shape fields (sigma of a lognormal, alpha, beta, lamb) stay.
_SCALED = ("value", "mean", "p5", "p95", "low", "mode", "high", "lower", "upper")
SIDES = ("low", "high")


@dataclass(frozen=True)
class Alternative:
    """One side of a judgment: its config and how it differs from the run's."""

    name: str
    judgment: Judgment
    side: str        # "low" or "high"
    setting: float   # the value, or the factor of a scaled schedule or distribution
    config: Config


def alternatives(config: Config) -> list[Alternative]:
    """Both sides of every judgment of ``config``, in name order; a judgment that does not fit the key it names
    (a scale on a fixed number that is 0, values on a schedule, an unknown key) is a :class:`ConfigError`."""
    out = []
    for name, judgment in config.judgments.items():
        settings = judgment.scale or (judgment.low, judgment.high)
        for side, setting in zip(SIDES, settings):
            assert setting is not None  # Judgment's validator: low and high are both given where scale is not
            raw = config.resolved()
            _apply(raw, config, name, judgment, float(setting))
            try:
                alternative = validate(raw, source=f"judgments.{name} ({side})")
            except ConfigError as e:
                raise ConfigError(f"judgments.{name}: its {side} alternative is not a valid config: {e}") from None
            out.append(Alternative(name, judgment, side, float(setting), alternative))
    return out


def check(config: Config) -> None:
    """Every judgment fits the key it names (builds its alternatives)."""
    alternatives(config)


def _apply(raw: dict, config: Config, name: str, judgment: Judgment, setting: float) -> None:
    where = f"judgments.{name}: key = {judgment.key!r}"
    if judgment.pair is not None:
        _set_correlation(raw[judgment.key], judgment.pair, setting, where)
        return
    *parents, last = judgment.key.split(".")
    node = raw
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            break
    if not isinstance(node, dict) or last not in node:
        raise ConfigError(f"{where}: no such key in the config")
    value = node[last]
    scaled = judgment.scale is not None
    if isinstance(value, dict) and "dist" in value:  # a parameter: fixed (a value) or drawn (scaled)
        if value["dist"] != "fixed" and not scaled:
            raise ConfigError(f"{where} is drawn ({value['dist']}): give scale = [low, high], factors on its "
                              "whole distribution")
        node[last] = _scaled_distribution(value, setting) if scaled else {"dist": "fixed", "value": setting}
    elif isinstance(value, dict) and value and all(str(k).isdigit() for k in value):  # a schedule by year
        if not scaled:
            raise ConfigError(f"{where} is a schedule by year: give scale = [low, high], factors on every year")
        node[last] = {year: v * setting for year, v in value.items()}
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        node[last] = value * setting if scaled else (int(setting) if isinstance(value, int) else setting)
    else:
        raise ConfigError(f"{where} is not a number, a schedule, a distribution or a correlation entry")


def _scaled_distribution(table: dict, factor: float) -> dict:
    out = copy.deepcopy(table)
    for field in _SCALED:
        if out.get(field) is not None:
            out[field] = out[field] * factor
    if "sd" in out:
        out["sd"] = out["sd"] * factor
    if out["dist"] == "lognormal" and "mu" in out:
        out["mu"] = out["mu"] + math.log(factor)
    return out


def _set_correlation(table: dict, pair: tuple[str, str], value: float, where: str) -> None:
    names, matrix = table.get("names", []), table.get("matrix", [])
    missing = [n for n in pair if n not in names]
    if missing:
        raise ConfigError(f"{where}: pair names {missing[0]!r}, not in its names ({', '.join(names) or 'none'})")
    i, j = names.index(pair[0]), names.index(pair[1])
    if i == j:
        raise ConfigError(f"{where}: pair names {pair[0]!r} twice; a correlation entry is between two names")
    m = np.array(matrix, dtype=float)
    m[i, j] = m[j, i] = value
    table["matrix"] = m.tolist()


JUDGMENTS_FILE = "judgments.parquet"
BOOTSTRAP = 400  # resamples of the paths for the paired error of a quantile's change
GAP_Q = 0.95


def figures(paths, config: Config) -> dict[str, np.ndarray]:
    """Per path, the values whose mean (probabilities) or 95% quantile (the funding gap) the table reports."""
    # Imported here, as in the functions below: `simulator validate` checks the judgments (``check``) and must not
    # wait for the engine and pandas to load.
    from .analysis import outcome_indicators

    return {**{name: hits.astype(float) for name, hits in outcome_indicators(paths, config).items()},
            "funding_gap_q95": paths["funding_gap"].to_numpy(float)}


def paired_change(base: np.ndarray, other: np.ndarray, quantile: float | None, seed: int) -> tuple[float, float,
                                                                                                 float]:
    """(the figure in ``base``, its change in ``other``, the change's paired standard error): for a mean, the
    spread of the per-path differences; for a ``quantile``, that of a paired bootstrap (the same resampled paths
    for both runs, ``BOOTSTRAP`` times, from ``seed``)."""
    n = len(base)
    if quantile is None:
        d = other - base
        return float(base.mean()), float(d.mean()), float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    q = lambda x: float(np.quantile(x, quantile, method="inverted_cdf"))  # noqa: E731 (the summaries' order statistic)
    rng = np.random.default_rng(seed)
    changes = np.empty(BOOTSTRAP)
    for b in range(BOOTSTRAP):
        pick = rng.integers(0, n, n)
        changes[b] = q(other[pick]) - q(base[pick])
    return q(base), q(other) - q(base), float(changes.std(ddof=1))


def judgment_table(config: Config, base_paths, seed: int, run, progress=None):
    """``judgments.parquet``'s table: one row per judgment and side, with the paired change of each figure of
    :func:`figures` from the run (``base_paths``: its per-path rows, every path) to the alternative, which
    ``run(config)`` simulates with the run's seed and path count and returns as per-path rows. Ranked by the
    swing (high - low) of P(shortfall by the end)."""
    import pandas as pd

    base = figures(base_paths, config)
    chosen = alternatives(config)
    rows = []
    for k, alt in enumerate(chosen):
        if progress is not None:
            progress(k, len(chosen), alt)
        other = figures(run(alt.config), config)
        row = {"judgment": alt.name, "key": alt.judgment.key + (f"[{', '.join(alt.judgment.pair)}]"
                                                               if alt.judgment.pair else ""),
               "side": alt.side, "setting": alt.setting, "scaled": alt.judgment.scale is not None,
               "why": alt.judgment.why}
        for name, values in base.items():
            value, change, se = paired_change(values, other[name], GAP_Q if name == "funding_gap_q95" else None,
                                              seed + k)
            row.update({f"{name}_base": value, name: value + change, f"{name}_change": change,
                        f"{name}_change_se": se})
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    shortfall = f"p_shortfall_by_{config.simulation.end_year}_change"
    swing = table.pivot(index="judgment", columns="side", values=shortfall)
    order = (swing["high"] - swing["low"]).abs().sort_values(ascending=False, kind="stable").index
    table["rank"] = table["judgment"].map({name: i + 1 for i, name in enumerate(order)}).astype("int32")
    table["low_first"] = table["side"] != "low"
    table = table.sort_values(["rank", "low_first"], kind="stable").drop(columns="low_first").reset_index(drop=True)
    return table.astype({"judgment": "string", "key": "string", "side": "string", "why": "string"})


def run_judgments(folder, progress=None):
    """``simulator sensitivity --judgments FOLDER``: the table of :func:`judgment_table` for the finished run in
    ``folder`` (re-simulated in memory where it kept only a sample of its paths), written to
    ``judgments.parquet`` there. Returns (table, the run's metadata, the path it was written to)."""
    from . import __version__
    from .analysis import run_config
    from .api import run
    from .results import read_results, write_parquet
    from .storage import Location
    from .units import FACTOR, unit_of

    results = read_results(folder)
    meta = results.metadata
    config = run_config(results, folder)
    if not config.judgments:
        raise ConfigError(f"{folder}: the run's config lists no [judgments]; add entries (key, low and high or "
                          "scale, why) and run it again")
    n_paths, seed = meta["n_paths"], meta["seed"]

    def simulate(alternative: Config):
        return run(alternative, n_paths, seed, keep_paths="all").paths

    base = results.paths if meta["paths_kept"] == n_paths else simulate(config)
    table = judgment_table(config, base, seed, simulate, progress)
    path = Location(folder) / JUDGMENTS_FILE
    # A setting is a factor where the judgment scales a schedule or distribution, else in its key's unit.
    setting_units = {j: FACTOR if scaled else unit_of(key) or "" for j, key, scaled in
                     zip(table.get("judgment", []), table.get("key", []), table.get("scaled", []))}
    write_parquet(path, table, {**{k: v for k, v in meta.items() if k != "runtime"},
                                "analysis": {"name": "judgments", "simulator_version": __version__}}, setting_units)
    return table, meta, path
