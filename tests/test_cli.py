"""The command line, driven through click's CliRunner, and the Parquet round trip."""

import io
import json
import shutil
import subprocess
import sys
import time
import traceback

import click
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import simulator
import simulator.config
from simulator.cli import CompileNote, compile_note, main
from simulator.errors import SettingsError
from simulator.results import IDENTITY, ResultsError, read_results


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "base"
    result = CliRunner().invoke(main, ["run", "-n", "4000", "--seed", "3", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    assert runner.invoke(main, ["-h"]).exit_code == 0
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.output, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.name} has no help"


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and simulator.__version__ in result.output


@pytest.mark.parametrize("env, huge", [({}, False), ({"NUMPY_MADVISE_HUGEPAGE": "1"}, True)])
def test_commands_put_new_arrays_on_ordinary_pages(monkeypatch, env, huge):
    """While a command works, numpy's huge-page advice is off (slow first writes on many Linux machines) unless
    NUMPY_MADVISE_HUGEPAGE says otherwise; numpy's setting is restored after."""
    switch = pytest.importorskip("numpy._core.multiarray")._set_madvise_hugepage
    for key in ("NUMPY_MADVISE_HUGEPAGE", *env):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    seen = []
    original = simulator.config.load_config

    def load_config(*args):
        state = switch(True)
        switch(state)
        seen.append(state)
        return original(*args)

    monkeypatch.setattr(simulator.config, "load_config", load_config)
    before = switch(True)
    try:
        assert CliRunner().invoke(main, ["validate", str(simulator.config.DEFAULT_CONFIG)]).exit_code == 0
        assert seen == [huge] and switch(before) is True
    finally:
        switch(before)


HEAVY = ("numba", "pandas", "scipy", "pyarrow")


def loaded_by(code: str) -> list[str]:
    """The heavy modules (``HEAVY``, and numpy) a fresh interpreter has loaded after ``code``."""
    probe = f"{code}\nimport sys\nprint([m for m in {HEAVY + ('numpy',)!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.splitlines()[-1])


def test_the_command_line_loads_numba_pandas_and_scipy_only_for_the_commands_that_need_them():
    """`simulator --help`, `--version` and `validate` start in a fraction of a second: numba, pandas and scipy
    (~1.5 s to import) load only where a command uses them."""
    assert loaded_by("import simulator.cli") == []
    run = "from simulator.cli import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass"
    assert loaded_by(run.format(args=["--version"])) == []
    assert loaded_by(run.format(args=["--help"])) == []
    # validate prints the distributions' quantiles (scipy.special), but simulates nothing
    assert loaded_by(run.format(args=["validate", str(simulator.config.DEFAULT_CONFIG)])) == ["scipy", "numpy"]
    assert loaded_by("import simulator\nsimulator.load_config()") == ["scipy", "numpy"]
    assert "numba" in loaded_by("import simulator\nsimulator.run")


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [False, True])
def test_a_compile_is_noted_on_stderr_with_its_seconds(tty):
    """The first run compiles for a minute or more: a note says so, ticking on a terminal, else one line."""
    stream = Stream(tty)
    note = CompileNote(stream)
    note.start()
    time.sleep(0.6)
    note.end()
    note.start()  # a compile soon after the last shares its line
    note.end()
    time.sleep(note.GRACE + 0.6)  # then the line ends by itself
    text = stream.getvalue()
    assert text.replace("\x1b[K", "").endswith(" s\n") and text.count("\n") == 1
    assert text.count(CompileNote.TEXT) == (text.count("\r") if tty else 1)
    assert text.count("\r") >= (3 if tty else 0)
    note.close()  # closed already: nothing more
    assert stream.getvalue() == text


def test_compile_note_reports_numba_compiles_and_is_quiet_with_quiet(capsys):
    from simulator.jit import jit

    def compiled_here(x):  # defined in the test: not cached, so it compiles on its first call
        return x + 1

    for quiet in (False, True):
        with compile_note(quiet):
            assert jit(compiled_here)(quiet) == quiet + 1
        err = capsys.readouterr().err
        assert (CompileNote.TEXT in err and err.endswith(" s\n")) if not quiet else err == ""


def test_run_prints_headline_figures_with_intervals(finished_run):
    out, output = finished_run
    assert "p_fcf_positive_2030" in output and "95% interval" in output
    assert "p_shortfall_by_2028" in output and "funding_gap_es95" in output
    assert sorted(p.name for p in out.iterdir()) == ["by_step.parquet", "by_year.parquet", "config.json",
                                                      "histograms.parquet", "manifest.json", "paths",
                                                      "summary.parquet"]
    assert sorted(p.name for p in (out / "paths").iterdir()) == ["part-00000.parquet"]


def test_run_refuses_an_existing_folder_without_force(finished_run, tmp_path):
    out, _ = finished_run
    runner = CliRunner()
    result = runner.invoke(main, ["run", "-n", "100", "-o", str(out), "-q"])
    assert result.exit_code == 1 and "--force" in result.output
    assert read_results(out).metadata["n_paths"] == 4000  # untouched
    fresh = tmp_path / "fresh"
    assert runner.invoke(main, ["run", "-n", "100", "-o", str(fresh), "-q"]).exit_code == 0
    result = runner.invoke(main, ["run", "-n", "200", "-o", str(fresh), "-q", "--force"])
    assert result.exit_code == 0 and read_results(fresh).metadata["n_paths"] == 200


def test_show_prints_the_summary(finished_run):
    out, run_output = finished_run
    result = CliRunner().invoke(main, ["show", str(out)])
    assert result.exit_code == 0
    assert "4,000 paths, seed 3" in result.output
    # The same table as the run printed.
    table = [line for line in run_output.splitlines() if line.startswith("p_fcf_positive")]
    assert table[0] in result.output
    assert CliRunner().invoke(main, ["show", str(out), "--all"]).output.count("\n") > 200


def test_show_refuses_a_folder_without_manifest(tmp_path):
    result = CliRunner().invoke(main, ["show", str(tmp_path)])
    assert result.exit_code == 1 and "manifest.json" in result.output


def test_show_refuses_a_modified_file(finished_run, tmp_path):
    out, _ = finished_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    summary = copy / "summary.parquet"
    summary.write_bytes(summary.read_bytes()[:-100])
    result = CliRunner().invoke(main, ["show", str(copy)])
    assert result.exit_code == 1 and "checksum" in result.output


def test_validate_prints_resolved_parameters():
    result = CliRunner().invoke(main, ["validate", "configs/base.toml", "--set", "funding.min_cash=15"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "revenue.consumer.growth_initial" in result.output
    assert any(line.startswith("funding.min_cash") and "15" in line for line in result.output.splitlines())


def test_usage_errors_exit_2():
    runner = CliRunner()
    assert runner.invoke(main, ["run", "--steps-per-year", "3"]).exit_code == 2
    assert runner.invoke(main, ["run", "--paths", "many"]).exit_code == 2
    assert runner.invoke(main, ["frobnicate"]).exit_code == 2


# The arguments each command needs besides the option tried.
COMMAND_ARGS = {"run": ["run", "-q"], "scenarios": ["scenarios", "-q"],
                "solve": ["solve", "--target", "p_fcf_positive_2030=0.5", "--vary", "funding.min_cash", "-q"]}


@pytest.mark.parametrize("command, option, value, named", [
    *((command, "-n", "0", "'-n' / '--paths': 0 is not in the range x>=1") for command in COMMAND_ARGS),
    *((command, "--seed", "-1", "'--seed': -1 is not in the range 0<=x<=") for command in COMMAND_ARGS),
    ("run", "--threads", "0", "'--threads': 0 is not in the range x>=1"),
    ("run", "--chunk-size", "0", "'--chunk-size': 0 is not in the range x>=1"),
    ("run", "--max-paths", "0", "'--max-paths': 0 is not in the range x>=1"),
    ("run", "--keep-paths", "most", "'--keep-paths': 'most': expected all, none or sample:N"),
    ("run", "--keep-paths", "sample:-5", "'--keep-paths': 'sample:-5': expected all, none or sample:N"),
])
def test_bad_option_values_are_usage_errors(command, option, value, named, tmp_path):
    """The same bad value is the same usage error in every command that takes the option (these exited 1 with
    the run's own message before): exit status 2, click's usage line and one error line naming the option;
    nothing is written."""
    out = tmp_path / "out"
    args = [*COMMAND_ARGS[command], option, value, *(["--out", str(out)] if command != "solve" else [])]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"Usage: main {command} [OPTIONS]"), result.output
    assert [line for line in lines if line.startswith("Error:")] == [lines[-1]]
    assert lines[-1].startswith(f"Error: Invalid value for {named}"), result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_bug_keeps_its_traceback_and_a_user_error_is_one_line(monkeypatch, tmp_path):
    """The command line turns only the simulator's own errors (SimulatorError) into one line: a plain
    ValueError from deep in a run is a bug, and must show where it happened."""
    def bug(*args, **kwargs):
        raise ValueError("a bug, not a bad input")

    monkeypatch.setattr(simulator.api, "check_room", bug)
    args = ["run", "-n", "100", "-q", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError) and not isinstance(result.exception, SettingsError)
    assert "Error:" not in result.output
    assert "in bug" in "".join(traceback.format_exception(*result.exc_info))

    def refusal(*args, **kwargs):
        raise SettingsError("a setting the user can change")

    monkeypatch.setattr(simulator.api, "check_room", refusal)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == ["Error: a setting the user can change"]
    assert not (tmp_path / "out").exists()


def test_parquet_round_trip_with_metadata(finished_run):
    out, _ = finished_run
    results = read_results(out)
    meta = results.metadata
    for key in ("schema_version", "simulator_version", "seed", "n_paths", "steps_per_year", "config_hash", "config"):
        assert key in meta
    assert meta["seed"] == 3 and meta["n_paths"] == 4000 and meta["steps_per_year"] == 4
    # The tables carry the run's metadata but how it was executed (runtime: in the manifest only) ...
    for name in ("summary", "by_year", "by_step"):
        file_meta = json.loads(pq.read_schema(out / f"{name}.parquet").metadata[b"simulator"])
        assert file_meta == {k: v for k, v in meta.items() if k != "runtime"}
    # ... the per-path parts the run's identity, known when they are written.
    part_meta = json.loads(pq.read_schema(out / "paths" / "part-00000.parquet").metadata[b"simulator"])
    assert part_meta == {k: meta[k] for k in IDENTITY}
    # The config stored with the run reproduces it exactly.
    again = simulator.run(simulator.load_config(out / "config.json"), 4000, seed=3)
    pd.testing.assert_frame_equal(again.summary, results.summary)
    pd.testing.assert_frame_equal(again.paths, results.paths)
    pd.testing.assert_frame_equal(again.by_year, results.by_year)


def test_tables_have_the_documented_columns(finished_run):
    out, _ = finished_run
    results = read_results(out)
    assert list(results.summary.columns) == ["metric", "value", "stderr", "ci_low", "ci_high"]
    metrics = set(results.summary["metric"])
    required = ["p_fcf_positive_2030", *(f"p_shortfall_by_{y}" for y in range(2026, 2031)),
                "p_revenue_2030_at_least_plan", "p_compute_spend_within_600", "revenue_2030_q05",
                "revenue_2030_q50", "revenue_2030_q95", "fcf_2030_q05", "fcf_2030_q50", "fcf_2030_q95",
                "gross_margin_2030_q50", "funding_gap_q50", "funding_gap_q95", "funding_gap_es95",
                "cfar95_2030_vs_expected", "cfar95_2030_vs_plan"]
    assert not set(required) - metrics
    paths = results.paths
    for col in ["path_id", "revenue_2026", "fcf_2030", "gross_margin_2028", "cash_end", "lowest_cash",
                "funding_gap", "first_shortfall", "breakeven_year", "compute_spend_total", "raised_total",
                "credit_drawn_max", "funding.initial_cash", "revenue.consumer.growth_initial"]:
        assert col in paths.columns, col
    assert paths["path_id"].tolist() == list(range(4000))
    by_year = results.by_year
    assert set(by_year["variable"]) == {"revenue", "gross_margin", "fcf", "cash", "compute_spend"}
    assert len(by_year) == 25 and (by_year["q05"] <= by_year["q50"]).all() and (by_year["q50"] <= by_year["q95"]).all()


def test_summary_is_consistent_with_the_paths(finished_run):
    out, _ = finished_run
    r = read_results(out)
    assert r.metric("p_fcf_positive_2030").value == (r.paths["fcf_2030"] > 0).mean()
    shortfall_2030 = r.paths["first_shortfall"].notna()
    assert r.metric("p_shortfall_by_2030").value == shortfall_2030.mean()
    assert (r.paths.loc[~shortfall_2030, "funding_gap"] == 0).all()
    assert (r.paths.loc[shortfall_2030, "funding_gap"] > 0).all()


def test_read_results_rejects_a_foreign_folder(tmp_path):
    with pytest.raises(ResultsError):
        read_results(tmp_path / "nope")


def test_replay_recomputes_a_stored_path(finished_run, tmp_path):
    out, _ = finished_run
    csv = tmp_path / "trace.csv"
    result = CliRunner().invoke(main, ["replay", str(out), "--path", "123", "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    assert "matches the run's stored row" in result.output
    trace = pd.read_csv(csv)
    assert len(trace) == 20 and {"revenue", "fcf", "cash_end", "credit", "price", "market"} <= set(trace.columns)
    assert trace["cash_end"].iloc[-1] == pytest.approx(read_results(out).paths.loc[123, "cash_end"], rel=1e-9)
    bad = CliRunner().invoke(main, ["replay", str(out), "--path", "4000"])
    assert bad.exit_code == 1 and "0..3999" in bad.output
