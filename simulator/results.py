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
While the run goes on, its parts wait in a hidden folder (``STAGING_DIR``) that pandas, pyarrow and
DuckDB skip, and move to ``paths/`` just before the manifest: a reader of ``paths/`` never sees the
parts of an unfinished run.

``manifest.json`` (files, rows, SHA-256, every part included) is written last, so a folder without
a valid manifest is an incomplete run and readers refuse it. Readers check the manifest against the
files (names, checksums, row counts, path ids, and each file's own metadata).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__, units
from .errors import SimulatorError
from .layout import BLOCK_PATHS
from .stats import effective_paths
from .storage import Location, first_line

SCHEMA_VERSION = 3  # 2: per-path rows in the paths/ dataset; runtime in the manifest only. 3: model v2 compute
# (contracts, spot, idle capacity: model v2), its paths/ columns and summary metrics
METADATA_KEY = b"simulator"
MANIFEST = "manifest.json"
CONFIG_FILE = "config.json"
RESUME_DIR = ".resume"  # an interrupted run's saved progress
TABLES = ("summary", "by_year")
PATHS_DIR = "paths"  # the per-path dataset
STAGING_DIR = ".paths-unfinished"  # its parts until the run ends (readers of datasets skip hidden folders)
DERIVED_TABLES = ("sensitivity", "judgments")  # written later by analysis commands
STEP_TABLE = "by_step"  # per-step quantiles: written with the run, read by Results.by_step when asked for
HISTOGRAM_TABLE = "histograms"  # binned FCF and funding gap for the report; runs before 0.5 lack it
IDENTITY = ("schema_version", "simulator_version", "seed", "steps_per_year", "config_name", "config_hash", "config")
REQUIRED_METADATA = (*IDENTITY, "n_paths")
# Of a posterior run only (``simulator run --actuals``): the reported figures its paths are weighted by. Part of
# its identity: a prior run's files have none, and a file of one run never passes for one of the other.
ACTUALS = "actuals"


class ResultsError(SimulatorError, ValueError):
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
    steps: pd.DataFrame | Callable[[], pd.DataFrame] | None = field(default=None, repr=False)

    @property
    def paths(self) -> pd.DataFrame | None:
        """The per-path rows in path-id order, or None where they were not read."""
        if callable(self.rows):
            self.rows = self.rows()
        return self.rows

    @property
    def by_step(self) -> pd.DataFrame | None:
        """The per-step quantiles (``by_step.parquet``: step, date, variable, mean, q05 .. q95, paths), read or
        computed when first asked for."""
        if callable(self.steps):
            self.steps = self.steps()
        return self.steps

    def metric(self, name: str) -> pd.Series:
        """One summary row (value, stderr, ci_low, ci_high) by metric name."""
        rows = self.summary[self.summary["metric"] == name]
        if rows.empty:
            raise KeyError(f"no metric {name!r} in this run")
        return rows.iloc[0]


def run_identity(config, seed: int, actuals=None) -> dict:
    """The metadata of every file of a run: what its numbers depend on (see ``IDENTITY``), and a posterior run's
    reported figures (``ACTUALS``: the file as typed, its text and SHA-256; ``actuals`` a
    :class:`simulator.actuals.Actuals`)."""
    identity = {"schema_version": SCHEMA_VERSION, "simulator_version": __version__, "seed": seed,
                "steps_per_year": config.simulation.steps_per_year, "config_name": config.name,
                "config_hash": config.digest(), "config": config.resolved()}
    if actuals is not None:
        identity[ACTUALS] = {"file": actuals.name, "sha256": actuals.digest, "text": actuals.text}
    return identity


def part_name(index: int) -> str:
    """The file of part ``index`` of the per-path dataset, relative to the run folder."""
    return f"{PATHS_DIR}/part-{index:05d}.parquet"


def staged_part_name(index: int) -> str:
    """Where part ``index`` is written while the run goes on, relative to the run folder."""
    return f"{STAGING_DIR}/part-{index:05d}.parquet"


def part_count(n_kept: int) -> int:
    """Number of parts of a run that keeps ``n_kept`` rows (one, empty, when it keeps none)."""
    return max(1, -(-n_kept // BLOCK_PATHS))


def write_parquet(path: str | Path | Location, table: pa.Table | pd.DataFrame, metadata: dict,
                  row_units: dict[str, str] | None = None) -> dict:
    """Write ``table`` to ``path`` (whole or not at all), with ``metadata`` as JSON under the key ``simulator``
    and each field's unit in its own metadata (:func:`simulator.units.annotate`; ``row_units`` for quantities
    whose unit it does not know); returns its manifest entry (rows, SHA-256). Every Parquet file of the project
    is written here, so every file has the same string type (``string``, not pandas' ``large_string``)."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    table = units.annotate(_small_strings(table), row_units)
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


def _small_strings(table: pa.Table) -> pa.Table:
    """``table`` with its ``large_string`` columns (how pandas' string columns convert) as ``string``."""
    if not any(pa.types.is_large_string(t) for t in table.schema.types):
        return table
    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema],
                       metadata=table.schema.metadata)
    return table.cast(schema)


def write_results(out: str | Location, tables: dict[str, pa.Table | pd.DataFrame], metadata: dict,
                  parts: dict[str, dict]) -> None:
    """Write each table as ``<name>.parquet``, then the resolved config, then move the staged per-path ``parts``
    (name in ``paths/`` -> entry) into ``paths/``, then the manifest, which lists them all."""
    out = Location(out)
    file_metadata = {k: v for k, v in metadata.items() if k != "runtime"}
    entries = {f"{name}.parquet": write_parquet(out / f"{name}.parquet", table, file_metadata,
                                                units.STEP_UNITS if name == STEP_TABLE else None)
               for name, table in tables.items()}
    entries.update(parts)
    config_text = json.dumps(metadata["config"], indent=2) + "\n"
    _write(out / CONFIG_FILE, config_text)
    entries[CONFIG_FILE] = {"rows": None, "sha256": hashlib.sha256(config_text.encode()).hexdigest()}
    staging, dataset = out / STAGING_DIR, out / PATHS_DIR
    for name in staging.names():  # temporary files of a worker killed while it wrote its part
        if name.startswith("."):
            (staging / name).remove()
    try:
        staging.move_to(dataset)
    except OSError as e:
        raise ResultsError(f"{dataset}: cannot move the run's parts into place ({first_line(e)})") from None
    manifest = {"schema_version": SCHEMA_VERSION, "files": entries, "metadata": metadata}
    try:
        _write(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except ResultsError:
        dataset.move_to(staging)  # the parts wait again where saved progress expects them
        raise


def _write(path: Location, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as e:
        raise ResultsError(f"{path}: cannot write it ({first_line(e)})") from None


def check_files(folder: Location, entries: dict[str, dict], verify: bool = True,
                source: str = "the manifest") -> None:
    """Each file of ``entries`` (name -> rows, SHA-256) is in ``folder``, with its checksum when ``verify``."""
    for name, entry in entries.items():
        path = folder / name
        if not path.exists():
            raise ResultsError(f"{path}: listed in {source} but missing")
        if verify and path.sha256() != entry["sha256"]:
            raise ResultsError(f"{path}: checksum differs from {source}; the file was changed or is incomplete")


_FILE_NAME = re.compile(r"(summary|by_year|by_step|histograms)\.parquet|config\.json|paths/part-(\d{5,})\.parquet")
_SHA256 = re.compile(r"[0-9a-f]{64}")
REQUIRED_FILES = ("summary.parquet", "by_year.parquet", "by_step.parquet", CONFIG_FILE)


def read_manifest(folder: str | Location, verify: bool = True) -> dict:
    """The manifest of the finished run in ``folder``, checked: its shape, the files it names (inside the folder,
    all there, with their checksums when ``verify``)."""
    folder = Location(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such results folder")
    where = folder / MANIFEST
    try:
        manifest = json.loads(where.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{folder}: no {MANIFEST}; the run did not finish (or this is not a results folder)") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{where}: not valid JSON ({e})") from None
    except OSError as e:  # a folder named manifest.json, an unreadable file
        raise ResultsError(f"{where}: cannot read it ({first_line(e)})") from None
    if not isinstance(manifest, dict):
        raise ResultsError(f"{where}: expected a JSON object, found {type(manifest).__name__}")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(f"{folder}: schema version {manifest.get('schema_version')!r}, "
                           f"this simulator reads {SCHEMA_VERSION}; re-run the config with this version")
    _check_manifest(where, manifest)
    check_files(folder, manifest["files"], verify)
    return manifest


def _check_manifest(where: Location, manifest: dict) -> None:
    """The manifest has the shape a run writes: every file a run writes, no other, each with rows and SHA-256,
    and the metadata its readers use."""
    files, meta = manifest.get("files"), manifest.get("metadata")
    if not isinstance(files, dict) or not isinstance(meta, dict):
        raise ResultsError(f"{where}: expected objects 'files' and 'metadata'; this is not a manifest of a run")
    for name, entry in files.items():
        if not _FILE_NAME.fullmatch(name):
            raise ResultsError(f"{where}: lists {name!r}, not a file a run writes")
        if (not isinstance(entry, dict) or not (entry.get("rows") is None or _is_count(entry.get("rows")))
                or not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"])):
            raise ResultsError(f"{where}: the entry of {name} is not {{rows, sha256}}")
    missing = [n for n in REQUIRED_FILES if n not in files]
    if missing:
        raise ResultsError(f"{where}: does not list {', '.join(missing)}; the run's files are incomplete")
    absent = [k for k in (*REQUIRED_METADATA, "paths_kept") if k not in meta]
    if absent:
        raise ResultsError(f"{where}: metadata lacks {', '.join(absent)}")
    n_paths, kept = meta["n_paths"], meta["paths_kept"]
    if not (_is_count(n_paths) and n_paths > 0 and _is_count(kept) and kept <= n_paths and _is_count(meta["seed"])
            and isinstance(meta["config_hash"], str) and isinstance(meta["config"], dict)):
        raise ResultsError(f"{where}: metadata n_paths, paths_kept, seed, config_hash or config has the wrong type")
    parts = sorted(int(m.group(2)) for m in map(_FILE_NAME.fullmatch, files) if m is not None and m.group(2))
    if parts != list(range(part_count(kept))):
        raise ResultsError(f"{where}: lists parts {_ranges(parts)} of the per-path rows; a run that kept {kept:,} "
                           f"rows has parts 0..{part_count(kept) - 1}")


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _ranges(indices: list[int]) -> str:
    return "none" if not indices else ", ".join(map(str, indices[:5])) + (", ..." if len(indices) > 5 else "")


def _read(path: Location, required: tuple[str, ...], columns: list[str] | None = None) -> tuple[pa.Table, dict]:
    try:
        table = pq.read_table(path.path, filesystem=path.fs, columns=columns)
    except (OSError, pa.ArrowException) as e:
        raise ResultsError(f"{path}: cannot read it as Parquet ({first_line(e)})") from None
    meta = (table.schema.metadata or {}).get(METADATA_KEY)
    if meta is None:
        raise ResultsError(f"{path}: no '{METADATA_KEY.decode()}' metadata; not written by this simulator")
    try:
        metadata = json.loads(meta)
    except (json.JSONDecodeError, UnicodeDecodeError):
        metadata = None
    if not isinstance(metadata, dict):
        raise ResultsError(f"{path}: its '{METADATA_KEY.decode()}' metadata is not a JSON object")
    missing = [k for k in required if k not in metadata]
    if missing:
        raise ResultsError(f"{path}: metadata lacks {', '.join(missing)}")
    return table, metadata


def read_table(path: str | Location) -> tuple[pd.DataFrame, dict]:
    table, metadata = _read(Location(path), REQUIRED_METADATA)
    return table.to_pandas(), metadata


def _of_run(path: Location, metadata: dict, manifest: dict, keys: tuple[str, ...]) -> None:
    """The file's own metadata agrees with the manifest's on ``keys`` (what its numbers depend on) and on the
    reported figures its paths are weighted by (none in either, for a prior run)."""
    for key in (*keys, ACTUALS):
        if metadata.get(key) != manifest["metadata"].get(key):
            raise ResultsError(f"{path}: its {key} ({_short(metadata.get(key))}) differs from the manifest's "
                               f"({_short(manifest['metadata'].get(key))}); the files belong to different runs "
                               "or were edited")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_rows(path: Location, table: pa.Table, entry: dict) -> None:
    if entry["rows"] is not None and table.num_rows != entry["rows"]:
        raise ResultsError(f"{path}: {table.num_rows:,} rows, the manifest says {entry['rows']:,}")


def _read_paths(folder: Location, manifest: dict, columns: list[str] | None) -> pd.DataFrame:
    kept = manifest["metadata"]["paths_kept"]
    tables = []
    for index in range(part_count(kept)):
        name = part_name(index)
        path = folder / name
        read = columns if columns is None or "path_id" in columns else [*columns, "path_id"]
        table, metadata = _read(path, IDENTITY, read)
        _of_run(path, metadata, manifest, IDENTITY)
        _check_rows(path, table, manifest["files"][name])
        first = index * BLOCK_PATHS
        expected = min(BLOCK_PATHS, kept - first) if kept else 0
        ids = table.column("path_id")
        if table.num_rows != expected or (expected and (ids[0].as_py() != first
                                                        or ids[-1].as_py() != first + expected - 1)):
            raise ResultsError(f"{path}: expected the rows of path ids {first:,}..{first + expected - 1:,}; "
                               "the part belongs to another run or was edited")
        tables.append(table if read is columns else table.drop_columns(["path_id"]))
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

    def read(name: str) -> pd.DataFrame:
        path = folder / f"{name}.parquet"
        table, metadata = _read(path, REQUIRED_METADATA)
        _of_run(path, metadata, manifest, REQUIRED_METADATA)
        _check_rows(path, table, manifest["files"][path.name])
        return table.to_pandas()

    frames = {name: read(name) for name in TABLES}
    rows = _read_paths(folder, manifest, None) if paths else None
    return Results(rows, frames["summary"], frames["by_year"], manifest["metadata"], lambda: read(STEP_TABLE))


def weighted_resample(paths: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A posterior run's rows as an unweighted sample of its posterior: systematic resampling by ``weight``, as
    many rows as the rows' effective sample size (Kish), so that an analysis's standard errors are those of the
    effective paths. Rows stay in path order (a row may recur); the offset comes from the run's seed, so the
    sample is the same every time."""
    w = paths["weight"].to_numpy()
    m = max(1, round(effective_paths(w)))
    points = (np.random.default_rng(seed).random() + np.arange(m)) / m
    rows = np.minimum(np.searchsorted(np.cumsum(w) / np.sum(w), points, side="right"), len(w) - 1)
    return paths.iloc[rows].drop(columns="weight").reset_index(drop=True)
