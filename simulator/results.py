"""The Parquet files of a run, their metadata, and atomic writing.

Every file carries the same JSON metadata under the key ``simulator`` (schema version, creator
version, seed, n_paths, steps_per_year, config hash, resolved config).  Files are written under
temporary names and renamed into place; ``manifest.json`` (files, rows, SHA-256) is written
last, so a folder without a valid manifest is an incomplete run and readers refuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
METADATA_KEY = b"simulator"
MANIFEST = "manifest.json"
CONFIG_FILE = "config.json"
RESUME_DIR = ".resume"  # an interrupted run's saved progress
TABLES = ("paths", "summary", "by_year")
DERIVED_TABLES = ("sensitivity",)  # written later by analysis commands
STEP_TABLE = "by_step"  # per-step quantiles: written with the run, not read by read_results
REPORT_FILE = "report.html"  # written by `simulator report`; removed with the run it describes
REQUIRED_METADATA = ("schema_version", "simulator_version", "seed", "n_paths", "steps_per_year",
                     "config_hash", "config")


class ResultsError(ValueError):
    """A results folder that is missing, incomplete or not written by this simulator."""


@dataclass
class Results:
    """A finished run as pandas DataFrames plus its validated metadata."""

    paths: pd.DataFrame | None
    summary: pd.DataFrame
    by_year: pd.DataFrame
    metadata: dict

    def metric(self, name: str) -> pd.Series:
        """One summary row (value, stderr, ci_low, ci_high) by metric name."""
        rows = self.summary[self.summary["metric"] == name]
        if rows.empty:
            raise KeyError(f"no metric {name!r} in this run")
        return rows.iloc[0]


def prepare_folder(out: Path, force: bool, resume: bool = False) -> None:
    """Create ``out``; an existing run there is only replaced with ``force``, or continued with ``resume``."""
    if out.exists() and not out.is_dir():
        raise ResultsError(f"{out}: exists and is not a folder")
    if resume:
        if not (out / RESUME_DIR).is_dir():
            raise ResultsError(f"{out}: no interrupted run to resume here (no {RESUME_DIR} folder)")
    elif out.is_dir() and any(out.iterdir()):
        if not force:
            hint = " or --resume to continue the interrupted run" if (out / RESUME_DIR).is_dir() else ""
            raise ResultsError(f"{out}: folder exists and is not empty; use --force to replace its results{hint}")
        shutil.rmtree(out / RESUME_DIR, ignore_errors=True)
    if out.is_dir():  # the old manifest goes first: the folder no longer claims to be complete
        (out / MANIFEST).unlink(missing_ok=True)
        if not resume:  # and nothing derived from the old run survives next to the new one
            for name in (*TABLES, STEP_TABLE, *DERIVED_TABLES):
                (out / f"{name}.parquet").unlink(missing_ok=True)
            (out / REPORT_FILE).unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ResultsError(f"{out}: cannot write results there ({e.strerror})") from None


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_parquet(path: Path, table: pa.Table | pd.DataFrame, metadata: dict) -> int:
    """Write ``table`` to ``path`` atomically, with ``metadata`` as JSON under the key ``simulator``;
    returns its row count. Every Parquet file of the project is written here."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    blob = json.dumps(metadata, sort_keys=True).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: blob})
    try:
        # Dictionary encoding only slows the write of continuous floats (and enlarges the file).
        _atomic(Path(path), lambda tmp: pq.write_table(table, tmp, compression="zstd", use_dictionary=False))
    except OSError as e:
        raise ResultsError(f"{path}: cannot write it ({e.strerror or e})") from None
    return table.num_rows


def write_results(out: Path, tables: dict[str, pa.Table | pd.DataFrame], metadata: dict) -> None:
    """Write each table as ``<name>.parquet`` with ``metadata``, then the resolved config, then the manifest."""
    out = Path(out)
    entries = {}
    for name, table in tables.items():
        path = out / f"{name}.parquet"
        rows = write_parquet(path, table, metadata)
        entries[path.name] = {"rows": rows, "sha256": _sha256(path)}
    config_path = out / CONFIG_FILE
    _atomic(config_path, lambda tmp: tmp.write_text(json.dumps(metadata["config"], indent=2) + "\n"))
    entries[CONFIG_FILE] = {"rows": None, "sha256": _sha256(config_path)}
    manifest = {"schema_version": SCHEMA_VERSION, "files": entries, "metadata": metadata}
    _atomic(out / MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n"))


def read_manifest(folder: Path, verify: bool = True) -> dict:
    folder = Path(folder)
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
    for name, entry in manifest.get("files", {}).items():
        path = folder / name
        if not path.exists():
            raise ResultsError(f"{path}: listed in the manifest but missing")
        if verify and _sha256(path) != entry["sha256"]:
            raise ResultsError(f"{path}: checksum differs from the manifest; the file was changed or is incomplete")
    return manifest


def read_table(path: Path) -> tuple[pd.DataFrame, dict]:
    table = pq.read_table(path)
    meta = (table.schema.metadata or {}).get(METADATA_KEY)
    if meta is None:
        raise ResultsError(f"{path}: no '{METADATA_KEY.decode()}' metadata; not written by this simulator")
    metadata = json.loads(meta)
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise ResultsError(f"{path}: metadata lacks {', '.join(missing)}")
    return table.to_pandas(), metadata


def read_results(folder: str | Path, paths: bool = True, verify: bool = True) -> Results:
    """Read a finished run: the tables as DataFrames and the metadata (validated against the manifest).

    ``paths=False`` skips the per-path table (it can be large).
    """
    folder = Path(folder)
    manifest = read_manifest(folder, verify=verify)
    frames = {}
    for name in TABLES:
        if name == "paths" and not paths:
            continue
        frames[name], metadata = read_table(folder / f"{name}.parquet")
        if metadata.get("config_hash") != manifest["metadata"]["config_hash"]:
            raise ResultsError(f"{folder}/{name}.parquet: belongs to another run than the manifest")
    return Results(frames.get("paths"), frames["summary"], frames["by_year"], manifest["metadata"])


def remove_folder_contents(out: Path) -> None:
    """Used when a run fails: leave nothing that looks like a result."""
    (out / MANIFEST).unlink(missing_ok=True)
    for name in (*TABLES, STEP_TABLE):
        (out / f"{name}.parquet").unlink(missing_ok=True)
    (out / CONFIG_FILE).unlink(missing_ok=True)
    if out.is_dir() and not any(out.iterdir()):
        shutil.rmtree(out, ignore_errors=True)
