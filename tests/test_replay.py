"""`simulator replay` checks the run's files before it compares, so that "please report" means the simulator."""

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from simulator import replay as replay_module
from simulator.cli import main


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "base"
    result = CliRunner().invoke(main, ["run", "-n", "1000", "--seed", "5", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def one_line_error(args) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert "please report" not in result.output
    return result.output


def test_a_changed_stored_row_fails_its_checksum_not_the_simulator(run_copy):
    part = run_copy / "paths" / "part-00000.parquet"
    table = pq.read_table(part)
    cash = table["cash_end"].to_pylist()
    cash[7] += 1.0
    edited = table.set_column(table.column_names.index("cash_end"), "cash_end", pa.array(cash))
    pq.write_table(edited.replace_schema_metadata(table.schema.metadata), part)
    message = one_line_error(["replay", str(run_copy), "--path", "7"])
    assert f"{part}: checksum differs from the manifest" in message


@pytest.mark.parametrize("key, value, names", [("seed", 6, "summary.parquet: seed 5 differs"),
                                               ("config", None, "manifest.json: its config does not match")])
def test_a_changed_manifest_is_named_not_blamed_on_the_simulator(run_copy, key, value, names):
    manifest = json.loads((run_copy / "manifest.json").read_text())
    if key == "config":  # a valid config, but not the one the run simulated
        manifest["metadata"]["config"]["simulation"]["seed"] += 1
    else:
        manifest["metadata"][key] = value
    (run_copy / "manifest.json").write_text(json.dumps(manifest))
    assert names in one_line_error(["replay", str(run_copy), "--path", "7"])


def test_a_real_difference_with_intact_files_asks_for_a_report(run_copy, monkeypatch):
    simulate = replay_module.reference.simulate_path

    def off_by_one(*args):
        result = simulate(*args)
        result["scalars"]["cash_end"] += 1.0
        return result

    monkeypatch.setattr(replay_module.reference, "simulate_path", off_by_one)
    result = CliRunner().invoke(main, ["replay", str(run_copy), "--path", "7"])
    assert result.exit_code == 1
    assert "DIFFERS from the run's stored row (please report)" in result.output
    # Made by another version, a difference is that version's, not a bug to report.
    manifest = json.loads((run_copy / "manifest.json").read_text())
    manifest["metadata"]["simulator_version"] = "0.0.1"
    (run_copy / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(main, ["replay", str(run_copy), "--path", "7"])
    assert result.exit_code == 1 and "made by simulator 0.0.1" in result.output
    assert "please report" not in result.output


def test_replay_csv_into_a_missing_folder_is_one_line(finished_run, tmp_path):
    target = tmp_path / "no" / "such" / "trace.csv"
    message = one_line_error(["replay", str(finished_run), "--path", "3", "--csv", str(target)])
    assert f"--csv {target}: no folder {target.parent}" in message
    assert not (tmp_path / "no").exists()


def test_replay_explains_every_change_in_cash_and_dates_steps_as_the_files_do(finished_run):
    """cash_end = cash_start + fcf + raised_scheduled + raised_contingent + credit_change at every step, on paths
    with a scheduled raise, a contingent raise, a credit draw and a shortfall; the dates are by_step's, and a
    shortfall path's first step under min_cash is the date its row stores as first_shortfall."""
    paths = pq.read_table(finished_run / "paths").to_pandas()
    picks = {"first": 0, "credit drawn": int(paths.index[paths["credit_drawn_max"] > 0][0]),
             "contingent raise": int(paths.index[paths["raised_contingent"] > 0][0]),
             "shortfall": int(paths.index[paths["first_shortfall"].notna()][0])}
    by_step = pq.read_table(finished_run / "by_step.parquet").to_pandas()
    step_dates = by_step.drop_duplicates("step").set_index("step")["date"]
    seen = set()
    for what, path_id in picks.items():
        r = replay_module.replay(finished_run, path_id)
        t = r.trace
        assert r.matches_run, what
        assert list(t.columns[:len(replay_module.CASH_COLUMNS)]) == list(replay_module.CASH_COLUMNS)
        explained = t["cash_start"] + t["fcf"] + t["raised_scheduled"] + t["raised_contingent"] + t["credit_change"]
        assert np.allclose(explained, t["cash_end"], rtol=0, atol=1e-9), what
        assert np.array_equal(t["cash_start"].iloc[1:].to_numpy(), t["cash_end"].iloc[:-1].to_numpy())
        assert t["cash_start"].iloc[0] == pytest.approx(r.parameters["funding.initial_cash"])
        assert np.allclose(t["credit_change"].cumsum(), t["credit"], atol=1e-12)
        row = paths.iloc[path_id]
        assert t["raised_scheduled"].sum() == pytest.approx(row["raised_scheduled"], abs=1e-9)
        assert t["raised_contingent"].sum() == pytest.approx(row["raised_contingent"], abs=1e-9)
        assert list(t["date"]) == list(step_dates.loc[t["step"]])
        under = t.index[t["cash_end"] < 10.0]  # base's min_cash
        if len(under):
            assert t["date"].iloc[under[0]] == row["first_shortfall"]
        else:
            assert pd.isna(row["first_shortfall"])
        seen |= {c for c in ("raised_scheduled", "raised_contingent", "credit_change") if (t[c] != 0).any()}
    assert seen == {"raised_scheduled", "raised_contingent", "credit_change"}  # every column explained something


def test_replay_prints_the_funding_columns(finished_run):
    result = CliRunner().invoke(main, ["replay", str(finished_run), "--path", "3"])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "cash_start" in line)
    for column in ("date", "raised_scheduled", "raised_contingent", "credit_change", "cash_end"):
        assert column in header
