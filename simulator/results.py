"""The files of a run, their metadata, and reading them back; on a local folder or an fsspec URL
(:mod:`simulator.storage`: a file appears whole or not at all).

Every Parquet file carries JSON metadata under the key ``simulator``. The tables written at the end
(summary, by_year, by_step) carry the run's metadata except ``runtime`` (how the run was executed:
in the manifest only, so that two runs of the same config, seed and path count give the same bytes);
the per-path parts carry the run's identity (``IDENTITY``: what their rows depend on), since they
may be written before the run ends.

The per-path rows are a Parquet dataset, ``paths/part-NNNNN.parquet``: part k holds the kept rows of
path ids k * BLOCK_PATHS .. (k + 1) * BLOCK_PATHS - 1, written with the same function by whoever
simulated the block (a Dask task, or the driver at the end of a run), so its bytes do not depend on
who wrote it. A run that keeps no row writes an empty part 0, so that the dataset has its columns.

``manifest.json`` (files, rows, SHA-256, every part included) is written last, so a folder without
a valid manifest is an incomplete run and readers refuse it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .samples import BLOCK_PATHS
from .storage import Location, first_line

SCHEMA_VERSION = 2  # 2: per-path rows in the paths/ dataset; runtime in the manifest only
METADATA_KEY = b"simulator"
MANIFEST = "manifest.json"
CONFIG_FILE = "config.json"
RESUME_DIR = ".resume"  # an interrupted run's saved progress
TABLES = ("summary", "by_year")
PATHS_DIR = "paths"  # the per-path dataset
DERIVED_TABLES = ("sensitivity",)  # written later by analysis commands
STEP_TABLE = "by_step"  # per-step quantiles: written with the run, not read by read_results
REPORT_FILE = "report.html"  # written by `simulator report`; removed with the run it describes
# The charts `simulator report` writes next to it (simulator/report.py), removed with it.
REPORT_CHARTS = ("fan_revenue.png", "fan_gross_margin.png", "fan_fcf.png", "fan_cash.png", "fcf_histogram.png",
                 "survival.png", "funding_gap.png", "tornado.png")
IDENTITY = ("schema_version", "simulator_version", "seed", "steps_per_year", "config_name", "config_hash", "config")
REQUIRED_METADATA = (*IDENTITY, "n_paths")


class ResultsError(ValueError):
    """A results folder that is missing, incomplete or not written by this simulator."""


@dataclass
class Results:
    """A finished run as pandas DataFrames plus its validated metadata. ``rows`` may be a function that
    builds the per-path rows: ``paths`` calls it once, when first read (10^6 rows take ~0.6 s and ~1 GB
    as a DataFrame, which a run from the command line never needs)."""

    rows: pd.DataFrame | Callable[[], pd.DataFrame] | None = field(repr=False)
    summary: pd.DataFrame
    by_year: pd.DataFrame
    metadata: dict

    @property
    def paths(self) -> pd.DataFrame | None:
        """The per-path rows in path-id order, or None where they were not read."""
        if callable(self.rows):
            self.rows = self.rows()
        return self.rows

    def metric(self, name: str) -> pd.Series:
        """One summary row (value, stderr, ci_low, ci_high) by metric name."""
        rows = self.summary[self.summary["metric"] == name]
        if rows.empty:
            raise KeyError(f"no metric {name!r} in this run")
        return rows.iloc[0]


def run_identity(config, seed: int) -> dict:
    """The metadata of every file of a run: what its numbers depend on (see ``IDENTITY``)."""
    return {"schema_version": SCHEMA_VERSION, "simulator_version": __version__, "seed": seed,
            "steps_per_year": config.simulation.steps_per_year, "config_name": config.name,
            "config_hash": config.digest(), "config": config.resolved()}


def part_name(index: int) -> str:
    """The file of part ``index`` of the per-path dataset, relative to the run folder."""
    return f"{PATHS_DIR}/part-{index:05d}.parquet"


def part_count(n_kept: int) -> int:
    """Number of parts of a run that keeps ``n_kept`` rows (one, empty, when it keeps none)."""
    return max(1, -(-n_kept // BLOCK_PATHS))


def prepare_folder(out: str | Location, force: bool, resume: bool = False) -> Location:
    """Create ``out`` (and its ``paths/`` folder); an existing run there is only replaced with ``force``, or
    continued with ``resume`` (its parts already written stay)."""
    out = Location(out)
    if out.exists() and not out.is_dir():
        raise ResultsError(f"{out}: exists and is not a folder")
    if resume:
        if not (out / RESUME_DIR).is_dir():
            raise ResultsError(f"{out}: no interrupted run to resume here (no {RESUME_DIR} folder)")
    elif out.names():
        if not force:
            hint = " or --resume to continue the interrupted run" if (out / RESUME_DIR).is_dir() else ""
            raise ResultsError(f"{out}: folder exists and is not empty; use --force to replace its results{hint}")
        (out / RESUME_DIR).remove_tree()
    if out.is_dir():  # the old manifest goes first: the folder no longer claims to be complete
        (out / MANIFEST).remove()
        if not resume:  # and nothing derived from the old run survives next to the new one
            for name in (*TABLES, STEP_TABLE, *DERIVED_TABLES):
                (out / f"{name}.parquet").remove()
            (out / PATHS_DIR).remove_tree()
            for name in (REPORT_FILE, *REPORT_CHARTS):
                (out / name).remove()
    try:
        (out / PATHS_DIR).mkdir()
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.remove()
    except Exception as e:  # each file system fails in its own way; here they all mean the same
        raise ResultsError(f"{out}: cannot write results there ({first_line(e)})") from None
    return out


def write_parquet(path: str | Location, table: pa.Table | pd.DataFrame, metadata: dict) -> dict:
    """Write ``table`` to ``path`` (whole or not at all), with ``metadata`` as JSON under the key ``simulator``;
    returns its manifest entry (rows, SHA-256). Every Parquet file of the project is written here."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    blob = json.dumps(metadata, sort_keys=True).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: blob})
    sink = pa.BufferOutputStream()
    # Dictionary encoding only slows the write of continuous floats (and enlarges the file).
    pq.write_table(table, sink, compression="zstd", use_dictionary=False)
    data = sink.getvalue()  # a pyarrow Buffer: hashed and written without a copy
    try:
        Location(path).write_bytes(data)
    except OSError as e:
        raise ResultsError(f"{path}: cannot write it ({first_line(e)})") from None
    return {"rows": table.num_rows, "sha256": hashlib.sha256(data).hexdigest()}


def write_results(out: str | Location, tables: dict[str, pa.Table | pd.DataFrame], metadata: dict,
                  parts: dict[str, dict]) -> None:
    """Write each table as ``<name>.parquet``, then the resolved config, then the manifest, which lists them
    and the per-path ``parts`` already written (name -> entry)."""
    out = Location(out)
    file_metadata = {k: v for k, v in metadata.items() if k != "runtime"}
    entries = {f"{name}.parquet": write_parquet(out / f"{name}.parquet", table, file_metadata)
               for name, table in tables.items()}
    entries.update(parts)
    config_text = json.dumps(metadata["config"], indent=2) + "\n"
    (out / CONFIG_FILE).write_text(config_text)
    entries[CONFIG_FILE] = {"rows": None, "sha256": hashlib.sha256(config_text.encode()).hexdigest()}
    dataset = out / PATHS_DIR
    for name in dataset.names():  # temporary files of a worker killed while it wrote its part
        if name.startswith("."):
            (dataset / name).remove()
    manifest = {"schema_version": SCHEMA_VERSION, "files": entries, "metadata": metadata}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def check_files(folder: Location, entries: dict[str, dict], verify: bool = True,
                source: str = "the manifest") -> None:
    """Each file of ``entries`` (name -> rows, SHA-256) is in ``folder``, with its checksum when ``verify``."""
    for name, entry in entries.items():
        path = folder / name
        if not path.exists():
            raise ResultsError(f"{path}: listed in {source} but missing")
        if verify and path.sha256() != entry["sha256"]:
            raise ResultsError(f"{path}: checksum differs from {source}; the file was changed or is incomplete")


def read_manifest(folder: str | Location, verify: bool = True) -> dict:
    folder = Location(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such results folder")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise ResultsError(f"{folder}: no {MANIFEST}; the run did not finish (or this is not a results folder)") from None
    except json.JSONDecodeError as e:
        raise ResultsError(f"{folder}/{MANIFEST}: not valid JSON ({e})") from None
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(f"{folder}: schema version {manifest.get('schema_version')!r}, "
                           f"this simulator reads {SCHEMA_VERSION}")
    check_files(folder, manifest.get("files", {}), verify)
    return manifest


def _read(path: Location, required: tuple[str, ...], columns: list[str] | None = None) -> tuple[pa.Table, dict]:
    table = pq.read_table(path.path, filesystem=path.fs, columns=columns)
    meta = (table.schema.metadata or {}).get(METADATA_KEY)
    if meta is None:
        raise ResultsError(f"{path}: no '{METADATA_KEY.decode()}' metadata; not written by this simulator")
    metadata = json.loads(meta)
    missing = [k for k in required if k not in metadata]
    if missing:
        raise ResultsError(f"{path}: metadata lacks {', '.join(missing)}")
    return table, metadata


def read_table(path: str | Location) -> tuple[pd.DataFrame, dict]:
    table, metadata = _read(Location(path), REQUIRED_METADATA)
    return table.to_pandas(), metadata


def _of_run(path: Location, metadata: dict, manifest: dict) -> None:
    if metadata.get("config_hash") != manifest["metadata"]["config_hash"]:
        raise ResultsError(f"{path}: belongs to another run than the manifest")


def _read_paths(folder: Location, manifest: dict, columns: list[str] | None) -> pd.DataFrame:
    # Path-id order: by index, whatever the width of the numbers.
    names = sorted((n for n in manifest["files"] if n.startswith(PATHS_DIR + "/")), key=lambda n: (len(n), n))
    tables = []
    for name in names:
        table, metadata = _read(folder / name, IDENTITY, columns)
        _of_run(folder / name, metadata, manifest)
        tables.append(table)
    return pa.concat_tables(tables).to_pandas()


def read_paths(folder: str | Location, columns: list[str] | None = None, verify: bool = True) -> pd.DataFrame:
    """The per-path rows of a finished run in path-id order (only ``columns``, when given)."""
    folder = Location(folder)
    return _read_paths(folder, read_manifest(folder, verify), columns)


def read_results(folder: str | Location, paths: bool = True, verify: bool = True) -> Results:
    """Read a finished run (a local folder or a URL): the tables as DataFrames and the metadata, validated
    against the manifest.

    ``paths=False`` skips the per-path rows (they can be many); see also :func:`read_paths`.
    """
    folder = Location(folder)
    manifest = read_manifest(folder, verify=verify)
    frames = {}
    for name in TABLES:
        path = folder / f"{name}.parquet"
        table, metadata = _read(path, REQUIRED_METADATA)
        _of_run(path, metadata, manifest)
        frames[name] = table.to_pandas()
    rows = _read_paths(folder, manifest, None) if paths else None
    return Results(rows, frames["summary"], frames["by_year"], manifest["metadata"])


def remove_folder_contents(out: str | Location) -> None:
    """Used when a run fails: leave nothing that looks like a result."""
    out = Location(out)
    (out / MANIFEST).remove()
    for name in (*TABLES, STEP_TABLE):
        (out / f"{name}.parquet").remove()
    (out / PATHS_DIR).remove_tree()
    (out / CONFIG_FILE).remove()
    if out.is_dir() and not out.names():
        out.remove_tree()
