"""`simulator scenarios`: every config of a folder with one seed, side by side."""

import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import simulator
from simulator.cli import main
from simulator.config import PACKAGED_CONFIGS
from simulator.results import read_results
from simulator.scenarios import COMPARISON_METRICS

N = 2000


@pytest.fixture(scope="module")
def packaged_run(tmp_path_factory):
    """The packaged configs (the default folder), run once."""
    out = tmp_path_factory.mktemp("scenarios") / "out"
    result = CliRunner().invoke(main, ["scenarios", "-n", str(N), "--seed", "7", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out, result.output


def packaged_names():
    return sorted(simulator.load_config(p).name for p in PACKAGED_CONFIGS.glob("*.toml"))


def test_prints_one_row_per_scenario_with_intervals(packaged_run):
    _, output = packaged_run
    lines = output.splitlines()
    header = lines[0]
    for pattern in COMPARISON_METRICS:
        assert pattern.format(end=2030) in header
    for name in packaged_names():
        row = next(line for line in lines if line.startswith(name + " "))
        assert row.count("[") == len(COMPARISON_METRICS)  # a 95% interval per figure
    assert "95% intervals" in output and f"{N:,} paths" in output


def test_writes_a_run_folder_per_scenario_with_one_seed(packaged_run):
    out, _ = packaged_run
    names = packaged_names()
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "scenarios.parquet"])  # no temp file left
    for name in names:
        meta = read_results(out / name, paths=False).metadata
        assert meta["seed"] == 7 and meta["n_paths"] == N and meta["config_name"] == name


def test_scenarios_parquet_stacks_the_summaries(packaged_run):
    out, _ = packaged_run
    table = pd.read_parquet(out / "scenarios.parquet")
    assert list(table.columns) == ["scenario", "metric", "value", "stderr", "ci_low", "ci_high"]
    assert table["scenario"].dtype == "string"
    assert sorted(table["scenario"].unique()) == packaged_names()
    for name in packaged_names():
        own = read_results(out / name, paths=False).summary
        mine = table[table["scenario"] == name].drop(columns="scenario").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, own)
    assert b"simulator" in pq.read_schema(out / "scenarios.parquet").metadata


def test_a_scenario_equals_its_own_run(packaged_run):
    """Common random numbers: the scenario run is the plain run of that config with the same seed."""
    out, _ = packaged_run
    alone = simulator.run(simulator.load_config(PACKAGED_CONFIGS / "bear.toml"), N, seed=7)
    pd.testing.assert_frame_equal(read_results(out / "bear").paths, alone.paths)


def test_refuses_existing_results_without_force(packaged_run, tmp_path):
    out, _ = packaged_run
    before = (out / "scenarios.parquet").read_bytes()
    runner = CliRunner()
    result = runner.invoke(main, ["scenarios", "-n", "100", "-o", str(out), "-q"])
    assert result.exit_code == 1 and "--force" in result.output
    assert (out / "scenarios.parquet").read_bytes() == before
    # --force replaces everything, here in a copy.
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    result = runner.invoke(main, ["scenarios", "-n", "100", "-o", str(copy), "-q", "--force"])
    assert result.exit_code == 0, result.output
    assert read_results(copy / "base", paths=False).metadata["n_paths"] == 100
    assert set(pd.read_parquet(copy / "scenarios.parquet")["scenario"]) == set(packaged_names())


def small_folder(tmp_path, files: dict[str, str]):
    folder = tmp_path / "configs"
    folder.mkdir()
    shutil.copy(PACKAGED_CONFIGS / "base.toml", folder / "base.toml")
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_runs_a_given_folder(tmp_path):
    folder = small_folder(tmp_path, {"tight.toml": 'extends = "base.toml"\nname = "tight"\n'
                                                   "[funding]\nmin_cash = 20.0\n"})
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["scenarios", str(folder), "-n", "500", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "scenarios.parquet")
    assert sorted(table["scenario"].unique()) == ["base", "tight"]
    shortfall = table[table["metric"] == "p_shortfall_by_2030"].set_index("scenario")["value"]
    assert shortfall["tight"] >= shortfall["base"]  # a higher floor is crossed more often


@pytest.mark.parametrize("files, message", [
    ({"twin.toml": 'extends = "base.toml"\nname = "base"\n'}, "name = 'base'"),
    ({"other_seed.toml": 'extends = "base.toml"\nname = "other"\n[simulation]\nseed = 5\n'},
     "disagree on simulation.seed"),
    ({"broken.toml": 'extends = "base.toml"\n[funding]\nmin_cash = "lots"\n'}, "funding.min_cash"),
])
def test_config_problems_are_one_line_errors(tmp_path, files, message):
    folder = small_folder(tmp_path, files)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["scenarios", str(folder), "-n", "100", "-o", str(out), "-q"])
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (out / "scenarios.parquet").exists()


def test_disagreeing_seeds_run_with_an_explicit_seed(tmp_path):
    folder = small_folder(tmp_path, {"other_seed.toml": 'extends = "base.toml"\nname = "other"\n'
                                                        "[simulation]\nseed = 5\n"})
    result = CliRunner().invoke(main, ["scenarios", str(folder), "-n", "100", "--seed", "3",
                                       "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output


def test_an_empty_folder_is_an_error(tmp_path):
    result = CliRunner().invoke(main, ["scenarios", str(tmp_path), "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 1 and "no *.toml config" in result.output
