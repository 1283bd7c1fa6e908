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
from .results import part_name, read_manifest
from .samples import BLOCK_PATHS
from .storage import Location


@dataclass
class Replay:
    path_id: int
    parameters: dict[str, float]  # drawn parameters of the path
    trace: pd.DataFrame           # one row per step: every state variable
    matches_run: bool | None      # the run's stored row agrees (None: the run did not keep it)


def replay(folder: str | Path, path_id: int) -> Replay:
    folder = Location(folder)
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
    return Replay(path_id, parameters, trace, _matches_stored_row(folder, meta["paths_kept"], config, path_id, result))


def _matches_stored_row(folder: Location, kept: int, config, path_id: int, result: dict) -> bool | None:
    if path_id >= kept:
        return None
    path = folder / part_name(path_id // BLOCK_PATHS)
    row = pq.read_table(path.path, filesystem=path.fs, filters=[("path_id", "=", path_id)]).to_pandas().iloc[0]
    stored = [row[f"{var}_{y}"] for var in ("revenue", "fcf", "cash") for y in config.years] + [row["cash_end"]]
    recomputed = [result["annual"][var][i] for var in ("revenue", "fcf", "cash")
                  for i in range(len(config.years))] + [result["scalars"]["cash_end"]]
    return bool(np.allclose(stored, recomputed, rtol=1e-9, atol=1e-9))
