"""`simulator export` (the workbook and the CSV files) and the summary as JSON (`show --json`, `run --json`)."""

import importlib.util
import json
import math
import shutil
import subprocess

import pandas as pd
import pytest
from click.testing import CliRunner

import simulator.export
from simulator.cli import main
from simulator.export import CSV_FILES, SHEETS, metric_unit, run_tables, summary_json, write_xlsx
from simulator.results import read_results

# A config string that a spreadsheet would run as a formula, with a control character XML cannot hold.
DESCRIPTION = "=1+2 @SUM(A1) \x01"
needs_openpyxl = pytest.mark.skipif(importlib.util.find_spec("openpyxl") is None,
                                    reason="openpyxl is not installed (the excel extra)")


@pytest.fixture(scope="module")
def a_run(tmp_path_factory):
    """A run made with --json, its description a formula: its folder and the command's result (stdout and stderr
    apart)."""
    out = tmp_path_factory.mktemp("export") / "run"
    result = CliRunner().invoke(main, ["run", "-n", "2000", "--seed", "5", "-o", str(out), "-q", "--json",
                                       "--set", f"description={json.dumps(DESCRIPTION)}"])
    assert result.exit_code == 0, result.output
    return out, result


@pytest.fixture(scope="module")
def exported(a_run, tmp_path_factory):
    """The run exported to a workbook and a CSV folder."""
    out, _ = a_run
    where = tmp_path_factory.mktemp("exported")
    xlsx, csv = where / "run.xlsx", where / "csv"
    args = ["export", str(out), "--csv", str(csv)] + (["--xlsx", str(xlsx)] if _has_openpyxl() else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out, xlsx, csv, result.output


def _has_openpyxl() -> bool:
    return importlib.util.find_spec("openpyxl") is not None


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- JSON


def test_run_json_prints_only_the_summary_on_stdout(a_run):
    out, result = a_run
    data = json.loads(result.stdout)  # nothing else on stdout
    assert "wrote" in result.stderr and "wrote" not in result.stdout
    summary = read_results(out, paths=False).summary
    assert [m["metric"] for m in data["metrics"]] == list(summary["metric"])
    row = data["metrics"][0]
    assert set(row) == {"metric", "value", "stderr", "ci_low", "ci_high", "unit", "headline", "description"}
    assert row["value"] == summary["value"].iloc[0] and row["ci_high"] == summary["ci_high"].iloc[0]
    assert data["run"]["n_paths"] == 2000 and data["run"]["seed"] == 5 and data["interval"] == 0.95


def test_show_json_equals_run_json_and_every_metric_has_a_unit(a_run):
    out, result = a_run
    shown = CliRunner().invoke(main, ["show", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == json.loads(result.stdout)
    metrics = json.loads(shown.stdout)["metrics"]
    assert all(m["unit"] for m in metrics), [m["metric"] for m in metrics if not m["unit"]]
    units = {m["metric"]: m["unit"] for m in metrics}
    assert units["p_fcf_positive_2030"] == "probability" and units["funding_gap_q95"] == "$B"
    assert units["gross_margin_2030_q50"] == "share of revenue" and units["gross_margin_2030_n_undefined"] == "paths"
    assert sum(m["headline"] for m in metrics) == 22


def test_json_has_null_for_an_undefined_statistic_never_nan(a_run):
    out, _ = a_run
    results = read_results(out, paths=False)
    results.summary.loc[0, ["value", "stderr"]] = [math.nan, math.inf]
    cfg = simulator.config.validate(results.metadata["config"])
    text = json.dumps(summary_json(results, cfg), allow_nan=False)  # raises on a NaN
    assert json.loads(text)["metrics"][0]["value"] is None and json.loads(text)["metrics"][0]["stderr"] is None


def test_units_of_metrics_to_come():
    assert metric_unit("ess") == "paths" and metric_unit("ess_share") == "share of paths"
    assert metric_unit("something_new") == ""


# ---------------------------------------------------------------- CSV


def test_csv_files_hold_the_tables(exported):
    out, _, csv, output = exported
    assert _files(csv) == sorted(CSV_FILES)
    assert all(f"wrote {csv / name}" in output for name in CSV_FILES)
    results = read_results(out, paths=False)
    summary = pd.read_csv(csv / "summary.csv")
    pd.testing.assert_frame_equal(summary[["metric", "value", "stderr", "ci_low", "ci_high"]],
                                  results.summary.astype({"metric": object}), check_dtype=False)
    assert summary["unit"].notna().all()
    by_year = pd.read_csv(csv / "by_year.csv")
    assert list(by_year.columns[:3]) == ["year", "variable", "unit"] and len(by_year) == len(results.by_year)
    by_step = pd.read_csv(csv / "by_step.csv", parse_dates=["date (the step's last day)"])
    assert by_step["date (the step's last day)"].iloc[0] == pd.Timestamp("2026-03-31")
    inputs = pd.read_csv(csv / "inputs.csv")
    row = inputs.set_index("key").loc["funding.initial_cash"]
    assert row["distribution"] == "lognormal" and row["p05"] == pytest.approx(36.0)
    assert (csv / "config.toml").read_text() == simulator.config.validate(results.metadata["config"]).to_toml()
    # A config's text that a spreadsheet would read as a formula gets a leading ', as spreadsheets read it.
    run = pd.read_csv(csv / "run.csv").set_index("field")["value"]
    assert run["description"] == "'" + DESCRIPTION
    assert json.loads((csv / "export.json").read_text())["files"] == [n for n in CSV_FILES if n != "export.json"]


def test_csv_refuses_a_folder_in_use_and_force_replaces_only_its_own_files(exported, tmp_path):
    out, _, csv, _ = exported
    runner = CliRunner()
    folder = tmp_path / "csv"
    shutil.copytree(csv, folder)
    (folder / "notes.txt").write_text("mine")
    result = runner.invoke(main, ["export", str(out), "--csv", str(folder)])
    assert result.exit_code == 1 and "--csv" in result.output and "--force" in result.output
    (folder / "summary.csv").write_text("edited")
    result = runner.invoke(main, ["export", str(out), "--csv", str(folder), "--force"])
    assert result.exit_code == 0, result.output
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "summary.csv").read_text() != "edited"
    # A folder whose summary.csv is someone else's: refused with --force too, naming the file; nothing written.
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "summary.csv").write_text("theirs")
    result = runner.invoke(main, ["export", str(out), "--csv", str(theirs), "--force"])
    assert result.exit_code == 1 and "summary.csv" in result.output and "not written by" in result.output
    assert _files(theirs) == ["summary.csv"] and (theirs / "summary.csv").read_text() == "theirs"


# ---------------------------------------------------------------- the workbook


@needs_openpyxl
def test_workbook_reads_back_with_numbers_dates_and_text(exported):
    import openpyxl

    out, xlsx, _, _ = exported
    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames == list(SHEETS)
    assert wb.properties.creator == "simulator export"
    results = read_results(out, paths=False)
    rows = list(wb["summary"].iter_rows(values_only=True))
    assert rows[0][:6] == ("metric", "unit", "value", "stderr", "ci_low", "ci_high")
    assert len(rows) == len(results.summary) + 1
    for row, expected in zip(rows[1:], results.summary.itertuples(index=False)):
        assert row[0] == expected.metric and row[1]
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row[2:6]), row
        # openpyxl writes 16 significant digits
        assert list(row[2:6]) == pytest.approx([expected.value, expected.stderr, expected.ci_low, expected.ci_high],
                                               rel=1e-15, abs=0)
    step = list(wb["by_step"].iter_rows(min_row=2, max_row=2, values_only=True))[0]
    assert step[1].date().isoformat() == "2026-03-31" and isinstance(step[4], float)
    by_year = list(wb["by_year"].iter_rows(min_row=2, max_row=2, values_only=True))[0]
    assert isinstance(by_year[0], int) and by_year[2] == "$B a year"
    run = {r[0]: r[1] for r in wb["run"].iter_rows(min_row=2, values_only=True)}
    assert run["n_paths"] == 2000 and run["as_of"].date().isoformat() == "2026-03-01"
    # The config's text is a string cell, never a formula; the control character is spelled out.
    cell = next(c for c in wb["run"]["B"] if c.value and str(c.value).startswith("=1+2"))
    assert cell.data_type == "s" and cell.value == "=1+2 @SUM(A1) \\x01" and cell.quotePrefix
    config = [r[0] for r in wb["config"].iter_rows(values_only=True)]
    toml = simulator.config.validate(results.metadata["config"]).to_toml().splitlines()
    assert [line or None for line in toml] == config


@needs_openpyxl
def test_undefined_statistics_are_empty_cells(a_run, tmp_path):
    import openpyxl

    out, _ = a_run
    export = run_tables(out)
    export.tables["summary"].loc[0, ["value", "stderr"]] = [math.nan, math.inf]
    write_xlsx(export, tmp_path / "nan.xlsx")
    row = list(openpyxl.load_workbook(tmp_path / "nan.xlsx")["summary"].iter_rows(min_row=2, max_row=2,
                                                                                   values_only=True))[0]
    assert row[2] is None and row[3] is None and isinstance(row[4], float)


@needs_openpyxl
def test_workbook_is_replaced_only_with_force_and_only_ours(exported, tmp_path):
    out, xlsx, _, _ = exported
    runner = CliRunner()
    ours = tmp_path / "ours.xlsx"
    shutil.copy(xlsx, ours)
    result = runner.invoke(main, ["export", str(out), "--xlsx", str(ours)])
    assert result.exit_code == 1 and "--force" in result.output
    assert runner.invoke(main, ["export", str(out), "--xlsx", str(ours), "--force"]).exit_code == 0
    theirs = tmp_path / "theirs.xlsx"
    theirs.write_bytes(b"a workbook of someone else")
    result = runner.invoke(main, ["export", str(out), "--xlsx", str(theirs), "--force"])
    assert result.exit_code == 1 and "not written by simulator export" in result.output
    assert theirs.read_bytes() == b"a workbook of someone else"


def _soffice(tmp_path, target: str, xlsx):
    done = subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path}/lo",
                           "--convert-to", target, "--outdir", str(tmp_path), str(xlsx)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Error" not in done.stderr, done.stderr  # a file it cannot load: exit 0, "Error"


def _ods_cells(path, sheet: str, rows: int) -> list[list[tuple[str | None, str | None]]]:
    """(value type, value) of the cells of a sheet's first ``rows`` rows, as LibreOffice saved them (flat ODS)."""
    import xml.etree.ElementTree as ET

    ns = {"table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
          "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
          "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0"}
    office = "{%s}" % ns["office"]
    table = next(t for t in ET.parse(path).getroot().iter("{%s}table" % ns["table"])
                 if t.get("{%s}name" % ns["table"]) == sheet)
    out = []
    for row in table.findall("table:table-row", ns)[:rows]:
        cells = []
        for cell in row.findall("table:table-cell", ns):
            kind = cell.get(office + "value-type")
            value = (cell.get(office + "date-value") if kind == "date" else cell.get(office + "value")
                     if kind == "float" else "".join(cell.find("text:p", ns).itertext()) if kind == "string" else None)
            cells += [(kind, value)] * min(int(cell.get("{%s}number-columns-repeated" % ns["table"], 1)), 20)
        out.append(cells)
    return out


@needs_openpyxl
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_opens_the_workbook(exported, tmp_path):
    """LibreOffice headless reads every sheet back: the numbers as numbers, the dates as dates, the config's
    text as text (not a formula's result)."""
    out, xlsx, _, _ = exported
    _soffice(tmp_path, "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1", xlsx)
    sheets = {name: pd.read_csv(tmp_path / f"{xlsx.stem}-{name}.csv") for name in SHEETS if name != "config"}
    summary = read_results(out, paths=False).summary
    assert list(sheets["summary"]["metric"]) == list(summary["metric"])
    for column in ("value", "stderr", "ci_low", "ci_high"):
        assert sheets["summary"][column].dtype == float
        pd.testing.assert_series_equal(sheets["summary"][column], summary[column], rtol=1e-13, check_names=False)
    assert sheets["by_step"]["date (the step's last day)"].iloc[0] == "2026-03-31"
    assert sheets["run"].set_index("field").at["description", "value"] == "=1+2 @SUM(A1) \\x01"
    # The types LibreOffice gave the cells: numbers, dates, text.
    _soffice(tmp_path, "fods", xlsx)
    fods = tmp_path / f"{xlsx.stem}.fods"
    header, first = _ods_cells(fods, "summary", 2)
    assert header[0] == ("string", "metric") and first[0] == ("string", summary["metric"].iloc[0])
    assert [kind for kind, _ in first[2:6]] == ["float"] * 4
    assert float(first[2][1]) == pytest.approx(summary["value"].iloc[0], rel=1e-15)
    step = _ods_cells(fods, "by_step", 2)[1]
    assert step[0] == ("float", "0") and step[1] == ("date", "2026-03-31")
    run = {row[0][1]: row[1] for row in _ods_cells(fods, "run", 30) if row and row[0][1]}
    assert run["description"] == ("string", "=1+2 @SUM(A1) \\x01") and run["n_paths"] == ("float", "2000")
    assert run["as_of"] == ("date", "2026-03-01")


# ---------------------------------------------------------------- bad input: one line, nothing written


@pytest.mark.parametrize("args, status, named", [
    ([], 2, "--xlsx FILE, --csv DIR"),
    (["--xlsx", "{tmp}/run.xls"], 1, "--xlsx"),
    (["--xlsx", "{tmp}/missing/run.xlsx"], 1, "no folder"),
    (["--xlsx", "{tmp}"], 1, "--xlsx"),
])
def test_bad_targets_write_nothing(a_run, tmp_path, args, status, named):
    out, _ = a_run
    if args and args[0] == "--xlsx" and not _has_openpyxl():
        pytest.skip("openpyxl is not installed")
    csv = tmp_path / "csv"
    result = CliRunner().invoke(main, ["export", str(out), *[a.format(tmp=tmp_path) for a in args],
                                       "--csv", str(csv)] if args else ["export", str(out)])
    assert result.exit_code == status and named in result.output, result.output
    assert not csv.exists()
    if status == 1:
        assert result.output.count("\n") == 1


def test_a_run_that_is_not_there_writes_nothing(tmp_path):
    result = CliRunner().invoke(main, ["export", str(tmp_path / "nothing"), "--csv", str(tmp_path / "csv")])
    assert result.exit_code == 1 and "no such results folder" in result.output
    assert not (tmp_path / "csv").exists()


def test_without_openpyxl_xlsx_says_how_to_install_it(a_run, tmp_path, monkeypatch):
    out, _ = a_run
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(simulator.export.importlib.util, "find_spec",
                        lambda name, *a: None if name == "openpyxl" else find_spec(name, *a))
    result = CliRunner().invoke(main, ["export", str(out), "--xlsx", str(tmp_path / "run.xlsx"),
                                       "--csv", str(tmp_path / "csv")])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "pip install 'ai-lab-risk-simulator[excel]'" in result.output
    assert _files(tmp_path) == []
