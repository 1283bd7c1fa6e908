"""Replaying one path of a finished run, step by step, from its config and seed alone.

The replay uses the plain-Python reference (``simulator.reference``), not the kernel: it is an
independent recomputation, and where the run kept the path's row the two are compared.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from . import reference
from .config import validate
from .model import build_inputs, drawn_parameters
from .results import read_manifest


@dataclass
class Replay:
    path_id: int
    parameters: dict[str, float]  # drawn parameters of the path
    trace: pd.DataFrame           # one row per step: every state variable
    matches_run: bool | None      # the run's stored row agrees (None: the run did not keep it)


def replay(folder: str | Path, path_id: int) -> Replay:
    folder = Path(folder)
    meta = read_manifest(folder, verify=False)["metadata"]
    if not 0 <= path_id < meta["n_paths"]:
        raise ValueError(f"--path {path_id}: the run has path ids 0..{meta['n_paths'] - 1}")
    config = validate(meta["config"], source=f"{folder}/manifest.json")
    inputs = build_inputs(config)
    result = reference.simulate_path(inputs, meta["seed"], path_id)
    parameters = dict(zip(drawn_parameters(config), result["theta"]))
    trace = pd.DataFrame(result["trace"])
    start = dt.date(config.simulation.start_year, 1, 1)
    trace.insert(1, "date", [start + dt.timedelta(days=round(t * 365.25)) for t in trace.pop("t_end")])
    return Replay(path_id, parameters, trace, _matches_stored_row(folder, config, path_id, result))


def _matches_stored_row(folder: Path, config, path_id: int, result: dict) -> bool | None:
    if path_id >= pq.read_metadata(folder / "paths.parquet").num_rows:
        return None
    row = pq.read_table(folder / "paths.parquet", filters=[("path_id", "=", path_id)]).to_pandas().iloc[0]
    stored = [row[f"{var}_{y}"] for var in ("revenue", "fcf", "cash") for y in config.years] + [row["cash_end"]]
    recomputed = [result["annual"][var][i] for var in ("revenue", "fcf", "cash")
                  for i in range(len(config.years))] + [result["scalars"]["cash_end"]]
    return bool(np.allclose(stored, recomputed, rtol=1e-9, atol=1e-9))
