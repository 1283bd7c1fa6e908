"""A finished run for spreadsheets and scripts: an Excel workbook, CSV files, and the summary as JSON.

:func:`export_run` writes the same tables to a workbook (``--xlsx``, with openpyxl: the ``excel`` extra) and
to a folder of CSV files (``--csv``): ``run`` (what was run, and notes on units and intervals), ``summary``
(every metric with its standard error and 95% interval), ``by_year``, ``by_step``, ``inputs`` (every value of
the resolved config, a distribution with its 5% / median / 95%) and ``config`` (the resolved config as TOML).
Numbers are written as numbers, dates as dates, every table has a ``unit`` column where its rows differ in
unit, and an undefined statistic (NaN in the Parquet files) is an empty cell.

Text is data, never a formula: every text cell of the workbook is a string cell (a config's description
starting with ``=`` stays text), and in the CSV files a text starting with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return is written with a leading ``'``, as spreadsheets read it (OWASP's rule for CSV injection).

Everything is checked before anything is written: the run, the targets, openpyxl. An existing target is
replaced only with ``force`` and only where this module wrote it: a workbook whose document properties name
``simulator export`` as its creator, the files a CSV export lists in its folder's ``export.json``. Each file
is written under a temporary name and renamed into place, so it appears whole or not at all.

:func:`summary_json` is the summary table as JSON data (``simulator show --json``, ``simulator run --json``).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import __version__
from .config import Config, validate
from .errors import SimulatorError
from .report import describe
from .results import STEP_TABLE, Results, read_results, read_table
from .storage import Location, first_line
from .summary import headline_metrics

CREATOR = "simulator export"  # the workbook's creator in its document properties: how --force knows it
EXCEL_INSTALL = "pip install 'ai-lab-risk-simulator[excel]' (or pip install openpyxl)"
TABLES = ("run", "summary", "by_year", "by_step", "inputs")  # the sheets and CSV files, then the config
CONFIG_SHEET = "config"
SHEETS = (*TABLES, CONFIG_SHEET)  # the workbook's sheets, in order
CSV_CONFIG = "config.toml"
CSV_MARKER = "export.json"  # in a CSV folder: the files this module wrote there
CSV_FILES = (*(f"{name}.csv" for name in TABLES), CSV_CONFIG, CSV_MARKER)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads a text cell starting so as a formula
EXCEL_CELL_CHARS = 32_767  # the most characters a spreadsheet cell holds
_ILLEGAL_XML = re.compile(r"[\000-\010\013\014\016-\037]")  # control characters XML (and so .xlsx) cannot hold

MONEY = "$B"
PROBABILITY = "probability"
SHARE_OF_REVENUE = "share of revenue"
PATHS = "paths"
# The unit of each summary metric, by the first pattern its name matches (tests/test_export.py checks that
# every metric of a run has one).
METRIC_UNITS = [
    (r"p_.+", PROBABILITY),
    (r".+_n_undefined|ess", PATHS),
    (r"ess_share", "share of paths"),
    (r"gross_margin_.+", SHARE_OF_REVENUE),
    (r"(revenue|fcf|cash|funding_gap|cfar95|compute_spend_total|committed_after_end)(_.+)?", MONEY),
]
YEAR_UNITS = {"revenue": "$B a year", "fcf": "$B a year", "gross_margin": SHARE_OF_REVENUE,
              "cash": "$B at year end", "compute_spend": "$B a year"}
STEP_UNITS = {"revenue": "$B a year (the step's amount, annualised)",
              "fcf": "$B a year (the step's amount, annualised)", "gross_margin": SHARE_OF_REVENUE,
              "cash": "$B at the step's end"}


class ExportError(SimulatorError, ValueError):
    """An export that cannot be written as asked: a target in the way, a missing package, a bad name."""


def metric_unit(metric: str) -> str:
    """The unit of a summary metric ("" for a metric this version does not know)."""
    for pattern, unit in METRIC_UNITS:
        if re.fullmatch(pattern, metric):
            return unit
    return ""


# ---------------------------------------------------------------- the tables


@dataclass
class RunExport:
    """The tables of a run as exported (``TABLES``, in order), and its resolved config as TOML."""

    tables: dict[str, pd.DataFrame]
    config_toml: str


def _finite(x):
    """A table value as JSON, a cell or a CSV field takes it: NaN and infinities are undefined (None)."""
    if x is None or x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _plain(x):
    """numpy scalars as Python numbers (openpyxl and json take those), undefined values as None."""
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    return _finite(x)


def summary_table(results: Results, cfg: Config) -> pd.DataFrame:
    """Every metric with its unit, standard error, 95% interval, whether it is a headline figure and what it
    means."""
    table = results.summary.copy()
    headline = set(headline_metrics(cfg))
    table.insert(1, "unit", [metric_unit(m) for m in table["metric"]])
    table["headline"] = [m in headline for m in table["metric"]]
    table["description"] = [describe(m) for m in table["metric"]]
    return table


def summary_json(results: Results, cfg: Config, folder: str | None = None) -> dict:
    """The summary table as JSON data: the run's identity and one object per metric (``metric``, ``value``,
    ``stderr``, ``ci_low``, ``ci_high``, ``unit``, ``headline``, ``description``). ``null`` marks an undefined
    statistic (NaN in ``summary.parquet``: a gross margin in a year no path has revenue)."""
    meta = results.metadata
    run = {key: meta.get(key) for key in ("config_name", "config_hash", "seed", "n_paths", "paths_kept",
                                         "steps_per_year", "simulator_version", "schema_version", "quantiles",
                                         "quantile_rank_error_max")}
    if folder is not None:
        run = {"folder": folder, **run}
    metrics = [{k: _plain(v) for k, v in row.items()} for row in summary_table(results, cfg).to_dict("records")]
    return {"run": run, "interval": 0.95, "metrics": metrics}


def _created(meta: dict) -> dt.datetime | None:
    """When the run was made, in UTC without a time zone (spreadsheets have none)."""
    text = meta.get("runtime", {}).get("created_utc")
    try:
        created = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return created.astimezone(dt.timezone.utc).replace(tzinfo=None)


def run_table(results: Results, cfg: Config, folder: str) -> pd.DataFrame:
    """What was run (field, value), then notes on how to read the other tables."""
    meta = results.metadata
    rows = [
        ("run folder", folder),
        ("config_name", meta["config_name"]),
        ("description", cfg.description),
        ("config_hash", meta["config_hash"]),
        ("seed", meta["seed"]),
        ("n_paths", meta["n_paths"]),
        ("paths_kept", meta.get("paths_kept")),
        ("steps_per_year", meta["steps_per_year"]),
        ("start_year", cfg.simulation.start_year),
        ("end_year", cfg.simulation.end_year),
        ("as_of", cfg.simulation.as_of or dt.date(cfg.simulation.start_year, 1, 1)),
        ("quantiles", meta.get("quantiles")),
        ("quantile_rank_error_max", meta.get("quantile_rank_error_max")),
        ("created (UTC)", _created(meta)),
        ("simulator_version", meta["simulator_version"]),
        ("schema_version", meta["schema_version"]),
        ("reproduce", meta.get("reproduce")),
        ("exported by", f"simulator {__version__}"),
        ("note: units", "money in $B (billions of US dollars); probabilities and shares from 0 to 1; "
                        "each table's unit column gives its rows' units"),
        ("note: intervals", "stderr: the Monte Carlo standard error; ci_low, ci_high: the 95% interval "
                            "(see docs/reference.md, Outputs)"),
        ("note: empty cells", "an undefined statistic, e.g. a gross margin in a year without revenue"),
    ]
    return pd.DataFrame({"field": [r[0] for r in rows], "value": pd.Series([r[1] for r in rows], dtype=object)})


def _leaves(value, key: str, params: dict):
    """(dotted key, value) for every value of a resolved config, a parameter (a key of ``params``) as one value,
    a list item by its index."""
    if key in params:
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{key}.{k}" if key else str(k), params)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{key}[{i}]", params)
    else:
        yield key, value


def inputs_table(cfg: Config) -> pd.DataFrame:
    """Every input of the resolved config: ``key``, ``value`` (a number, text, date or true/false; a fixed
    parameter's value), and for a parameter its ``distribution``, its ``p05``, ``p50``, ``p95`` as the kernel
    draws it and its ``definition``."""
    params = cfg.parameters()
    rows = []
    for key, value in _leaves(cfg.model_dump(exclude_none=True), "", params):
        row = {"key": key, "value": value, "distribution": None, "p05": None, "p50": None, "p95": None,
               "definition": None}
        if key in params:
            dist = params[key]
            row["distribution"] = dist.dist
            row["value"] = value["value"] if dist.dist == "fixed" else None
            row["p05"], row["p50"], row["p95"] = (dist.quantile(q) for q in (0.05, 0.5, 0.95))
            row["definition"] = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in value.items() if k != "dist")
        rows.append(row)
    table = pd.DataFrame(rows, columns=["key", "value", "distribution", "p05", "p50", "p95", "definition"])
    table["value"] = pd.Series([r["value"] for r in rows], dtype=object)  # numbers, text and dates as they are
    return table


def run_tables(folder: str | Location) -> RunExport:
    """Read the finished run in ``folder`` (checked against its manifest) and build the exported tables."""
    results = read_results(folder, paths=False)
    meta = results.metadata
    cfg = validate(meta["config"], source=f"{folder}/manifest.json")
    by_step, _ = read_table(Location(folder) / f"{STEP_TABLE}.parquet")  # its checksum was checked above
    by_year = results.by_year.copy()
    by_year.insert(2, "unit", [YEAR_UNITS.get(v, "") for v in by_year["variable"]])
    by_step.insert(3, "unit", [STEP_UNITS.get(v, "") for v in by_step["variable"]])
    by_step = by_step.rename(columns={"date": "date (the step's last day)"})
    tables = {"run": run_table(results, cfg, str(folder)), "summary": summary_table(results, cfg),
              "by_year": by_year, "by_step": by_step, "inputs": inputs_table(cfg)}
    return RunExport(tables, cfg.to_toml())


# ---------------------------------------------------------------- checks before writing


def _is_our_workbook(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            core = z.read("docProps/core.xml").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return f"<dc:creator>{CREATOR}</dc:creator>" in core


def _our_csv_files(folder: Path) -> set[str]:
    """The files an earlier export listed in ``folder``'s marker (none when it has no valid one)."""
    try:
        marker = json.loads((folder / CSV_MARKER).read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(marker, dict) or marker.get("written_by") != CREATOR:
        return set()
    files = marker.get("files")
    return {f for f in files if f in CSV_FILES} | {CSV_MARKER} if isinstance(files, list) else set()


def check_xlsx_target(path: Path, force: bool) -> None:
    if path.suffix.lower() != ".xlsx":
        raise ExportError(f"--xlsx {path}: expected a file name ending in .xlsx")
    if importlib.util.find_spec("openpyxl") is None:
        raise ExportError(f"--xlsx needs openpyxl, which is not installed: {EXCEL_INSTALL}")
    if not path.absolute().parent.is_dir():
        raise ExportError(f"--xlsx {path}: no folder {path.absolute().parent} to write it in")
    if path.is_dir():
        raise ExportError(f"--xlsx {path}: is a folder; give a file name ending in .xlsx")
    if path.exists() or path.is_symlink():
        if not force:
            raise ExportError(f"--xlsx {path}: exists; use --force to replace it (only a workbook that "
                              "simulator export wrote)")
        if path.is_symlink() or not path.is_file() or not _is_our_workbook(path):
            raise ExportError(f"--xlsx {path}: exists and was not written by simulator export; not replaced "
                              "(remove it or choose another name)")


def check_csv_target(folder: Path, force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"--csv {folder}: exists and is not a folder")
    if not folder.is_dir():
        return
    present = sorted(p.name for p in folder.iterdir())
    if not present:
        return
    if not force:
        raise ExportError(f"--csv {folder}: folder exists and is not empty; use --force to replace the files "
                          f"an earlier export wrote there ({', '.join(CSV_FILES)})")
    ours = _our_csv_files(folder)
    foreign = [name for name in CSV_FILES if name in present and name not in ours]
    foreign += [name for name in CSV_FILES if name in ours and name in present
                and ((folder / name).is_symlink() or not (folder / name).is_file())]
    if foreign:
        raise ExportError(f"--csv {folder}: {foreign[0]} exists and was not written by simulator export; "
                          "not replaced (remove it or choose another folder)")


# ---------------------------------------------------------------- writing


def _text(value: str, limit: int | None = None) -> str:
    """Text a file can hold: control characters XML forbids written as \\xNN, at most ``limit`` characters."""
    value = _ILLEGAL_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    if limit is not None and len(value) > limit:
        value = value[:limit - 12] + " [truncated]"
    return value


def _write(path: Path, data: bytes) -> None:
    """Write the file whole or not at all (:meth:`simulator.storage.Location.write_bytes`)."""
    try:
        Location(path).write_bytes(data)
    except OSError as e:
        raise ExportError(f"{path}: cannot write it ({first_line(e)})") from None


def _sheet(wb, name: str, frame: pd.DataFrame) -> None:
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(name)
    ws.append(list(frame.columns))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    widths = [len(str(c)) for c in frame.columns]
    for r, row in enumerate(frame.itertuples(index=False), start=2):
        for c, value in enumerate(row, start=1):
            value = _plain(value)
            cell = ws.cell(row=r, column=c)
            if isinstance(value, str):
                _text_cell(cell, value)
            else:
                cell.value = value
                if isinstance(value, dt.datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
                elif isinstance(value, dt.date):
                    cell.number_format = "yyyy-mm-dd"
            widths[c - 1] = max(widths[c - 1], min(60, len(str(value)) if value is not None else 0))
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = width + 2
    ws.freeze_panes = "A2"


def _text_cell(cell, value: str) -> None:
    """A string cell, never a formula or an error value, whatever the text starts with."""
    cell.value = _text(value, EXCEL_CELL_CHARS)
    cell.data_type = "s"
    if value.startswith(FORMULA_START):
        cell.quotePrefix = True  # and it stays text when edited


def write_xlsx(export: RunExport, path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name in TABLES:
        _sheet(wb, name, export.tables[name])
    ws = wb.create_sheet(CONFIG_SHEET)
    ws.column_dimensions["A"].width = 100
    for r, line in enumerate(export.config_toml.splitlines(), start=1):
        _text_cell(ws.cell(row=r, column=1), line)
    wb.properties.creator = CREATOR
    wb.properties.title = f"simulator run {export.tables['run'].set_index('field').at['config_name', 'value']}"
    data = io.BytesIO()
    wb.save(data)
    _write(path, data.getvalue())


def _csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text fields a spreadsheet would read as a formula get a leading ', as spreadsheets read it."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = [("'" + v if v.startswith(FORMULA_START) else v) if isinstance(v, str) else _plain(v)
                           for v in out[column]]
    return out


def write_csv(export: RunExport, folder: Path) -> list[Path]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"--csv {folder}: cannot make the folder ({first_line(e)})") from None
    written = []
    for name in TABLES:
        path = folder / f"{name}.csv"
        _write(path, _csv_safe(export.tables[name]).to_csv(index=False, lineterminator="\n").encode())
        written.append(path)
    path = folder / CSV_CONFIG
    _write(path, export.config_toml.encode())
    written.append(path)
    marker = {"written_by": CREATOR, "simulator_version": __version__, "files": [p.name for p in written]}
    _write(folder / CSV_MARKER, (json.dumps(marker, indent=2) + "\n").encode())
    return [*written, folder / CSV_MARKER]


def export_run(folder: str | Location, xlsx: Path | None = None, csv: Path | None = None,
               force: bool = False) -> list[Path]:
    """Write the run in ``folder`` as a workbook ``xlsx`` and/or CSV files in ``csv``; return the files written.
    Every check comes first: on an error nothing is written."""
    if xlsx is None and csv is None:
        raise ExportError("nothing to export: give --xlsx FILE, --csv DIR or both")
    if xlsx is not None:
        check_xlsx_target(xlsx, force)
    if csv is not None:
        check_csv_target(csv, force)
    export = run_tables(folder)
    written = []
    if xlsx is not None:
        write_xlsx(export, xlsx)
        written.append(xlsx)
    if csv is not None:
        written += write_csv(export, csv)
    return written
