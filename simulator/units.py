"""The unit of every column the simulator writes, recorded in each Parquet field's metadata (``unit``).

A column holds one unit (``revenue_2030``: USD bn; ``first_shortfall``: a date), or, in a long table, that of
the quantity its row names: ``summary.value`` is a probability in the row ``p_shortfall_by_2030`` and USD bn in
``revenue_2030_q50``. Such a field's ``unit`` says which column names the row, and its ``units`` holds the unit
of each row's quantity as a JSON object (``BY_ROW``).

Amounts are in billions of US dollars: a year's amount (``revenue_2030``, ``fcf_2030``), a stock at a date
(``cash_2030``: at the year's end), or a rate (``USD bn a year``: ``by_step``'s revenue and FCF, annualised;
a run-rate).
"""

from __future__ import annotations

import json
import re

import pyarrow as pa

USD = "USD bn"
USD_A_YEAR = "USD bn a year"
SHARE = "share"  # a fraction of a whole (1 = 100%)
PROBABILITY = "probability"
COUNT = "count"
YEAR = "year"
YEARS = "years"  # a duration
DATE = "date"
TEXT = "text"
FACTOR = "factor"  # a multiplier without unit
COMPUTE_UNITS = "compute units (USD bn at start-2026 spot prices)"

# Columns whose unit is that of the quantity their row names, and the column that names it.
BY_ROW = {**{c: "metric" for c in ("value", "stderr", "ci_low", "ci_high", "a", "b", "diff", "se_paired",
                                   "se_unpaired")},
          **{c: "variable" for c in ("mean", "mean_stderr", "q01", "q05", "q10", "q25", "q50", "q75", "q90", "q95",
                                     "q99")},
          "bottom_decile_max": "parameter", "top_decile_min": "parameter", "setting": "judgment"}

# by_step's revenue and FCF are the step's amount / dt: rates.
STEP_UNITS = {"revenue": USD_A_YEAR, "fcf": USD_A_YEAR}

NAMES = {
    # identifiers and labels
    "path_id": "path id", "step": "step (0 = the first)", "rank": "rank (1 = the first)", "bin": "bin (0 = the first)",
    "left": USD, "right": USD,  # histograms.parquet: the bins of FCF and of the funding gap
    **{c: TEXT for c in ("metric", "variable", "parameter", "scenario", "judgment", "key", "side", "why")},
    "scaled": "flag", "year": YEAR, "date": DATE, "first_shortfall": DATE, "breakeven_year": YEAR,
    # counts
    "paths": COUNT, "n_undefined": COUNT, "n_raises": COUNT, "n_bottom": COUNT, "n_top": COUNT,
    "ess": "paths (effective)", "ess_share": SHARE, "weight": "weight (relative)",
    # per-path and yearly quantities
    **{v: USD for v in ("revenue", "fcf", "cash", "compute_spend", "funding_gap", "cash_end", "lowest_cash",
                        "raised_total", "raised_scheduled", "raised_contingent", "credit_drawn_max",
                        "credit_outstanding_end", "committed_after_end", "contract_spend", "spot_spend",
                        "idle_compute", "compute_resale")},
    **{v: SHARE for v in ("gross_margin", "compute_margin", "utilisation")},
    "compute_units": COMPUTE_UNITS,
}

# Drawn parameters, by config key (docs/model.md, section 4); a segment's by its last part.
SEGMENT = {"run_rate": USD_A_YEAR, "growth_initial": "log growth a year", "growth_long_run": "log growth a year",
           "half_life": YEARS, "sigma": "per sqrt(year)", "competition_exposure": SHARE, "ceiling": USD_A_YEAR}
PARAMETERS = {
    "competition.intensity": "shocks a year", "competition.severity": "share of run-rate",
    "compute.gross_margin_0": SHARE, "compute.price_drift": "log a year", "compute.price_sigma": "per sqrt(year)",
    "compute.supply_shock_intensity": "shocks a year", "compute.supply_shock_size": "relative price jump",
    "compute.usage_drift": "log a year", "compute.usage_sigma": "per sqrt(year)",
    "compute.supply_shock_half_life": YEARS, "compute.resale": SHARE,
    "costs.opex_base": USD_A_YEAR, "costs.opex_growth": "log a year", "costs.opex_revenue_ratio": SHARE,
    "costs.cash_interest": "per year", "costs.partner_share": SHARE,
    "training.revenue_elasticity": "elasticity", "training.runway_floor": YEARS, "training.cut_factor": FACTOR,
    "training.plan": COMPUTE_UNITS + " a year",
    "funding.initial_cash": USD, "funding.min_cash": USD, "funding.contingent.lookahead": "years of burn",
    "funding.contingent.intercept": "logit", "funding.contingent.revenue_slope": "logit per log ratio to plan",
    "funding.contingent.market_slope": "logit per unit of market appetite",
    "funding.contingent.size_multiple": "multiple of run-rate", "funding.contingent.size_cap": USD,
    "funding.contingent.cooldown": YEARS, "funding.contingent.max_raises": COUNT,
    "funding.contingent.distress_factor": FACTOR, "funding.contingent.distress_size": FACTOR,
    "funding.contingent.distress_limit": USD, "funding.credit.limit": USD, "funding.credit.rate": "per year",
    "market.persistence": "autocorrelation over a year", "parameter_correlation": "correlation",
}
SCHEDULED = {"amount": USD, "probability": PROBABILITY, "gamma": "exponent", "tranches": COUNT,
             "tranche_period": YEARS}
CONTRACT = {"amount": USD_A_YEAR, "unit_price": "price relative to start-2026 spot", "take_or_pay": SHARE}

_SUFFIX = re.compile(r"_(q\d\d|mean|es95|stderr|se|change|base|swing|bottom|top|\d{4}|cumulative|total)$")


def unit_of(name: str) -> str | None:
    """The unit of the quantity ``name``: a column of a table we write, a summary metric, a by_year variable or a
    config key (a drawn parameter's column); None when it is not known."""
    if name in NAMES:
        return NAMES[name]
    if name.startswith("p_"):
        return PROBABILITY  # also a probability's swing, change or standard error
    if name.startswith("rho_"):
        return "rank correlation"
    if name.endswith("_n_undefined"):
        return COUNT
    if name.startswith("cfar95_"):
        return USD
    key = re.sub(r"\[.*\]$", "", name)  # a judgment's correlation pair
    if key in PARAMETERS:
        return PARAMETERS[key]
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "revenue":
        return SEGMENT.get(parts[2])
    if len(parts) == 4 and parts[:2] == ["funding", "scheduled"]:
        return SCHEDULED.get(parts[3])
    if len(parts) == 4 and parts[:2] == ["compute", "contracts"]:
        return CONTRACT.get(parts[3])
    stripped = _SUFFIX.sub("", name)
    return unit_of(stripped) if stripped != name else None


def annotate(table: pa.Table, row_units: dict[str, str] | None = None) -> pa.Table:
    """``table`` with ``unit`` in every field's metadata (a field that has one keeps it). A column of
    ``BY_ROW`` gets ``units``: the unit of each row's quantity, from ``row_units`` where it names one, else from
    :func:`unit_of`. A unit not known is left empty (the tests keep every file's units known)."""
    row_units = row_units or {}
    fields = []
    for f in table.schema:
        meta = dict(f.metadata or {})
        if b"unit" not in meta:
            by = BY_ROW.get(f.name)
            if by is not None and by in table.column_names:
                names = sorted({str(v) for v in table.column(by).to_pylist() if v is not None})
                meta[b"unit"] = f"by row: the unit of the row's {by}, in units".encode()
                meta[b"units"] = json.dumps({n: row_units.get(n) or unit_of(n) or "" for n in names}).encode()
            else:
                meta[b"unit"] = (unit_of(f.name) or "").encode()
        fields.append(f.with_metadata(meta))
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields, metadata=table.schema.metadata))


def units_of(schema: pa.Schema) -> dict[str, str | dict[str, str]]:
    """Each field's unit from a file's schema (``pyarrow.parquet.read_schema``): a string, or for a column of a
    long table, the unit of each row's quantity by name."""
    out: dict[str, str | dict[str, str]] = {}
    for f in schema:
        meta = f.metadata or {}
        out[f.name] = json.loads(meta[b"units"]) if b"units" in meta else meta.get(b"unit", b"").decode()
    return out
