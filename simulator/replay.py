"""Replaying one path of a finished run, step by step, from its config and seed alone.

The replay uses the plain-Python reference (``simulator.reference``), not the kernel: it is an
independent recomputation, and where the run kept the path's row the two are compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from . import __version__, reference
from .actuals import actuals_of_run, path_weights
from .config import validate
from .errors import SettingsError
from .layout import BLOCK_PATHS
from .model import build_inputs, drawn_parameters
from .results import MANIFEST, METADATA_KEY, ResultsError, part_name, read_manifest, read_table
from .storage import Location
from .summary import step_end_dates


@dataclass
class Replay:
    path_id: int
    parameters: dict[str, float]  # drawn parameters of the path
    trace: pd.DataFrame           # one row per step: the funding columns (CASH_COLUMNS), then every state variable
    matches_run: bool | None      # the run's stored row agrees (None: the run did not keep it)
    run_version: str = __version__  # the simulator version that made the run
    # A posterior run's: each reported figure with the path's own figure and the log-likelihood of the report
    # given it, and the path's weight (their product's exponential).
    figures: pd.DataFrame | None = None
    weight: float | None = None


def replay(folder: str | Path, path_id: int) -> Replay:
    """Recompute path ``path_id`` of the run in ``folder``. The run's files are checked first, like every reader
    does: a changed file, or a manifest whose run identity no longer matches its files, is an error naming it,
    so that a difference from the stored row can only come from the simulator."""
    folder = Location(folder)
    manifest = read_manifest(folder)  # every file against its checksum
    meta = manifest["metadata"]
    if not 0 <= path_id < meta["n_paths"]:
        raise SettingsError(f"--path {path_id}: the run has path ids 0..{meta['n_paths'] - 1}")
    config = validate(meta["config"], source=f"{folder}/manifest.json")
    # The manifest itself has no checksum: its config and seed are checked against what the run's files say.
    if config.digest() != meta.get("config_hash"):
        raise ResultsError(f"{folder}/{MANIFEST}: its config does not match its config_hash "
                           f"{str(meta.get('config_hash'))[:12]}; the manifest was changed")
    summary = folder / "summary.parquet"
    _same_run(summary, read_table(summary)[1], meta)
    inputs = build_inputs(config)
    result = reference.simulate_path(inputs, meta["seed"], path_id)
    parameters = dict(zip(drawn_parameters(config), result["theta"]))
    trace = step_trace(config, result["trace"])
    actuals = actuals_of_run(meta)
    figures = None if actuals is None else reported_figures(actuals, config, result["trace"])
    weight = None if figures is None else float(path_weights(figures[["log_likelihood"]].to_numpy())[0])
    matches = _matches_stored_row(folder, meta, config, path_id, result, weight)
    return Replay(path_id, parameters, trace, matches, str(meta.get("simulator_version", "?")), figures, weight)


def reported_figures(actuals, config, steps: list[dict]) -> pd.DataFrame:
    """Each reported figure of ``actuals`` with this path's own figure for its period and the log-likelihood of
    the report given it, from the reference's step records (``Actuals.simulated`` and ``log_likelihoods`` on
    them, as the kernel's trace is read)."""
    spy, start = config.simulation.steps_per_year, config.simulation.start_year
    dt = 1.0 / spy
    traced = np.array([[[s["revenue"] / dt, 1.0 - s["cogs"] / s["revenue"] if s["revenue"] > 0 else np.nan,
                         s["fcf"] / dt, s["cash"]] for s in steps[:actuals.traced_steps(start, spy)]]])
    own = actuals.simulated(traced, start, spy)[0][:, 0]
    loglik = actuals.log_likelihoods(traced, start, spy)[:, 0]
    rows = [{"period": f.period, "variable": f.variable, "reported": f.value, "path": x, "log_likelihood": ll}
            for f, x, ll in zip(actuals.figures, own, loglik)]
    return pd.DataFrame(rows)


# The columns that explain the change in cash over a step, first: cash_end = cash_start + fcf + raised_scheduled
# + raised_contingent + credit_change (fcf already holds the interest earned on cash and paid on the credit drawn).
CASH_COLUMNS = ("step", "date", "cash_start", "fcf", "raised_scheduled", "raised_contingent", "credit_change",
                "cash_end", "credit", "interest", "credit_interest")


def step_trace(config, steps: list[dict]) -> pd.DataFrame:
    """The reference's per-step records as a table: the funding columns first (``CASH_COLUMNS``), then the rest;
    ``date`` the last day of the step, as in ``by_step`` and ``first_shortfall``."""
    trace = pd.DataFrame(steps).rename(columns={"cash": "cash_end"})
    trace["date"] = step_end_dates(config, config.simulation.steps_per_year, len(trace))
    rest = [c for c in trace.columns if c not in CASH_COLUMNS and c != "t_end"]
    return trace[[*CASH_COLUMNS, *rest]]


def _same_run(path: Location, metadata: dict, meta: dict) -> None:
    """The file at ``path`` (its ``metadata``) was written by the run the manifest (``meta``) describes."""
    for key in ("config_hash", "seed", "steps_per_year"):
        if metadata.get(key) != meta.get(key):
            raise ResultsError(f"{path}: {key} {metadata.get(key)!r} differs from the manifest's "
                               f"{meta.get(key)!r}; the manifest or the file was changed")


def _matches_stored_row(folder: Location, meta: dict, config, path_id: int, result: dict,
                        weight: float | None) -> bool | None:
    if path_id >= meta["paths_kept"]:
        return None
    path = folder / part_name(path_id // BLOCK_PATHS)
    table = pq.read_table(path.path, filesystem=path.fs, filters=[("path_id", "=", path_id)])
    _same_run(path, json.loads((table.schema.metadata or {}).get(METADATA_KEY, b"{}")), meta)
    if table.num_rows != 1:
        raise ResultsError(f"{path}: holds {table.num_rows} rows of path {path_id}, expected 1")
    row = table.to_pandas().iloc[0]
    stored = [row[f"{var}_{y}"] for var in ("revenue", "fcf", "cash") for y in config.years] + [row["cash_end"]]
    recomputed = [result["annual"][var][i] for var in ("revenue", "fcf", "cash")
                  for i in range(len(config.years))] + [result["scalars"]["cash_end"]]
    if weight is not None:
        stored.append(row["weight"])
        recomputed.append(weight)
    return bool(np.allclose(stored, recomputed, rtol=1e-9, atol=1e-9))
