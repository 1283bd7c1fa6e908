"""The Parquet files a downstream user reads without our code: every field with its unit, one string type,
real dates, a reproduce command with no path of this machine, and ``Results.by_step``."""

import json
import os
import shlex
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import simulator
from simulator.cli import main
from simulator.config import PACKAGED_CONFIGS, command_config, load_config
from simulator.results import read_results
from simulator.units import BY_ROW, STEP_UNITS, USD, USD_A_YEAR, unit_of, units_of


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Every kind of file we write, from the command line run in a folder of its own (relative paths): two runs
    (a packaged config by its name), their sensitivity, judgments and comparison, a scenarios folder whose
    config extends the packaged base by its name, and a run updated on reported figures (weights, ess)."""
    root = tmp_path_factory.mktemp("outputs")
    (root / "mine").mkdir()
    (root / "mine" / "tight.toml").write_text('extends = "base"\nname = "tight"\n[funding]\nmin_cash = 12\n')
    commands = [["run", "base", "-n", "400", "--seed", "3", "-o", "a", "-q"],
                ["run", "mine/tight.toml", "-n", "400", "--seed", "3", "-o", "b", "-q", "--set", "costs.opex_base=4"],
                ["sensitivity", "a"], ["sensitivity", "--judgments", "a"],
                ["compare", "a", "b", "--out", "cmp.parquet"],
                ["scenarios", "mine", "-n", "300", "-o", "scen"],
                ["run", "base", "-n", "2000", "--seed", "3", "-o", "post", "-q", "--actuals",
                 str(PACKAGED_CONFIGS / "actuals" / "2026h1.toml")],
                ["run", "base", "-n", "2000", "--seed", "3", "-o", "post2", "-q", "--actuals", "2026h1"]]
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for args in commands:
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 0, (args, result.output)
    finally:
        os.chdir(cwd)
    return root


def test_every_field_of_every_file_has_its_unit_and_one_string_type(written):
    files = sorted(written.rglob("*.parquet"))
    names = {f.name for f in files}
    assert {"summary.parquet", "by_year.parquet", "by_step.parquet", "part-00000.parquet", "sensitivity.parquet",
            "judgments.parquet", "cmp.parquet", "scenarios.parquet"} <= names
    for f in files:
        schema = pq.read_schema(f)
        for field, unit in units_of(schema).items():
            where = f"{f.relative_to(written)}: {field}"
            if field in BY_ROW and BY_ROW[field] in schema.names:
                assert isinstance(unit, dict) and unit and all(unit.values()), (where, unit)
            else:
                assert isinstance(unit, str) and unit, where
        assert not any(pa.types.is_large_string(t) for t in schema.types), f
    # Spot checks, in the words a user reads.
    run = written / "a"
    summary = units_of(pq.read_schema(run / "summary.parquet"))
    assert summary["value"]["p_shortfall_by_2030"] == "probability"
    assert summary["ci_high"]["revenue_2030_q50"] == USD
    assert summary["value"]["gross_margin_2030_n_undefined"] == "count"
    step = units_of(pq.read_schema(run / "by_step.parquet"))
    assert step["q50"] == {"cash": USD, "fcf": USD_A_YEAR, "gross_margin": "share", "revenue": USD_A_YEAR}
    assert step["date"] == "date" and step["paths"] == "count"
    paths = units_of(pq.read_schema(run / "paths" / "part-00000.parquet"))
    assert paths["funding.initial_cash"] == USD and paths["revenue.consumer.half_life"] == "years"
    assert paths["first_shortfall"] == "date" and paths["n_raises"] == "count" and paths["utilisation_2030"] == "share"
    judged = units_of(pq.read_schema(run / "judgments.parquet"))
    assert judged["setting"]["min_cash"] == USD and judged["setting"]["training_plan"] == "factor"
    for schema in (pq.read_schema(run / "summary.parquet"), pq.read_schema(run / "by_step.parquet")):
        assert schema.field("variable" if "variable" in schema.names else "metric").type == pa.string()


def test_unit_names_cover_the_step_table_and_the_model_parameters():
    assert set(STEP_UNITS) <= {"revenue", "fcf"}
    for key in load_config().parameters():
        assert unit_of(key), key


def test_by_step_dates_are_dates_and_results_read_by_step(written):
    table = pq.read_table(written / "a" / "by_step.parquet")
    assert table.schema.field("date").type == pa.date32()
    res = read_results(written / "a", paths=False)
    pd.testing.assert_frame_equal(res.by_step, table.to_pandas())
    # A run without a folder computes the same table when asked.
    memory = simulator.run(load_config(), 400, 3)
    pd.testing.assert_frame_equal(memory.by_step, res.by_step, check_exact=True)


def test_reproduce_names_the_config_without_paths_of_this_machine(written):
    reproduce = {name: json.loads((written / name / "manifest.json").read_text())["metadata"]["reproduce"]
                 for name in ("a", "b", "scen/tight", "post", "post2")}
    assert reproduce["a"] == "simulator run base --seed 3 --paths 400 --keep-paths all"
    # A packaged actuals file by its name, however it was given.
    assert reproduce["post"] == reproduce["post2"] == ("simulator run base --seed 3 --paths 2000 --keep-paths all "
                                                       "--actuals 2026h1")
    assert reproduce["b"].startswith("simulator run mine/tight.toml --set costs.opex_base=4 --seed 3")
    assert reproduce["scen/tight"].startswith("simulator run mine/tight.toml --seed")
    for text in reproduce.values():
        assert not any(word.startswith("/") for word in shlex.split(text)), text
        assert str(written) not in text and str(PACKAGED_CONFIGS) not in text


def test_command_config_never_gives_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.toml").write_text('extends = "base"\n')
    assert command_config(None) == "base"
    assert command_config(PACKAGED_CONFIGS / "bear.toml") == "bear"
    assert command_config(Path("bear")) == "bear"
    assert command_config(Path("sub/x.toml")) == "sub/x.toml"
    assert command_config(tmp_path / "here.toml") == "here.toml"
    assert command_config(tmp_path.parent / "elsewhere.toml") == "config.json"  # the run's own copy
