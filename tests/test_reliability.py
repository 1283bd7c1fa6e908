"""Interrupted runs, resuming, and what a crashed run leaves behind."""

import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from simulator.results import ResultsError, read_results

from conftest import assert_tables_equal


def start(out, *args):
    return subprocess.Popen([sys.executable, "-m", "simulator", "run", "-q", "--out", str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_progress(proc, out, seconds):
    """Wait until the run has made its output folder (so its signal handlers are in place: a signal during
    start-up would stop it before it could save anything), then ``seconds`` more."""
    deadline = time.monotonic() + 120
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(seconds)
    assert proc.poll() is None, "the run finished before it could be interrupted"


def assert_same_files(a, b):
    parts = sorted(p.relative_to(a).as_posix() for p in (a / "paths").iterdir())
    assert parts == sorted(p.relative_to(b).as_posix() for p in (b / "paths").iterdir())
    for name in (*parts, "summary.parquet", "by_year.parquet"):
        assert_tables_equal(pq.read_table(a / name), pq.read_table(b / name))
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("keep, sig, size", [("none", signal.SIGINT, ["--paths", "3000000"]),
                                             ("all", signal.SIGTERM, ["--paths", "1000000", "--steps-per-year", "12"])])
def test_interrupted_run_resumes_to_identical_files(tmp_path, keep, sig, size):
    """Runs of a few seconds, stopped ~1 s in: streamed (histograms saved) and exact (rows saved)."""
    args = [*size, "--seed", "3", "--chunk-size", "50000", "--keep-paths", keep]
    whole = tmp_path / "whole"
    assert subprocess.run([sys.executable, "-m", "simulator", "run", "-q", "--out", str(whole), *args]).returncode == 0

    part = tmp_path / "part"
    proc = start(part, *args)
    wait_for_progress(proc, part, 1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert not (part / "manifest.json").exists()
    with pytest.raises(ResultsError, match="manifest"):
        read_results(part)

    # Without --resume or --force the folder is protected; --resume finishes the run.
    refused = subprocess.run([sys.executable, "-m", "simulator", "run", "-q", "--out", str(part), *args],
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "--resume" in refused.stderr
    resumed = subprocess.run([sys.executable, "-m", "simulator", "run", "-q", "--out", str(part), *args, "--resume"],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_files(whole, part)
    assert not (part / ".resume").exists()


def test_resume_with_other_settings_is_refused(tmp_path):
    part = tmp_path / "part"
    proc = start(part, "--paths", "2000000", "--chunk-size", "20000", "--keep-paths", "none")
    wait_for_progress(proc, part, 1.0)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    other = subprocess.run([sys.executable, "-m", "simulator", "run", "-q", "--out", str(part), "--paths", "2000000",
                            "--keep-paths", "none", "--seed", "99", "--resume"], capture_output=True, text=True)
    assert other.returncode == 1 and "differs in seed" in other.stderr


def test_resume_of_a_run_saved_by_another_version_is_refused(tmp_path):
    """Another version's kernel may give other numbers for the same paths: mixing them would be silent."""
    from simulator import load_config
    from simulator.built_model import Model
    from simulator.engine import RunState, new_state
    from simulator.storage import Location

    cfg = load_config()
    saved = new_state(Model.of(cfg), 1000, 1, None)
    saved.identity["simulator_version"] = "0.0.1"
    saved.save(Location(tmp_path))
    with pytest.raises(ValueError, match="differs in simulator_version"):
        RunState.load(Location(tmp_path), new_state(Model.of(cfg), 1000, 1, None))


def test_resume_without_saved_progress_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "simulator", "run", "-q", "--out", str(tmp_path / "x"), "--resume",
                             "--paths", "10"], capture_output=True, text=True)
    assert result.returncode == 1 and "no interrupted run to resume" in result.stderr


def test_killed_run_leaves_no_folder_readers_accept(tmp_path):
    out = tmp_path / "killed"
    proc = start(out, "--paths", "2000000", "--chunk-size", "20000")
    wait_for_progress(proc, out, 1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    with pytest.raises(ResultsError):
        read_results(out)


def test_invariant_check_names_the_broken_path():
    from simulator.config import load_config
    from simulator.engine import InvariantError, check_invariants, simulate

    sim = simulate(load_config(), 50, seed=1)
    col = sim.model.parameters.index("funding.initial_cash")
    check_invariants(sim.theta, sim.annual, sim.scalars, col, 1000)  # a correct chunk passes
    broken = sim.scalars.copy()
    broken[17, 0] += 0.01  # cash_end off by $10M
    with pytest.raises(InvariantError, match="path 1017: cash identity"):
        check_invariants(sim.theta, sim.annual, broken, col, 1000)
    nan = sim.annual.copy()
    nan[3, 0, 2] = float("nan")
    with pytest.raises(InvariantError, match="path 1003: non-finite"):
        check_invariants(sim.theta, nan, sim.scalars, col, 1000)


def test_progress_saved_by_another_version_is_refused(tmp_path):
    import json

    from simulator.api import RunInterrupted, run
    from simulator.config import load_config

    asked = []
    with pytest.raises(RunInterrupted):
        run(load_config(), 50_000, 1, tmp_path / "r", chunk_size=10_000,
            should_stop=lambda: asked.append(1) or len(asked) >= 2)
    state = tmp_path / "r" / ".resume" / "state.json"
    meta = json.loads(state.read_text())
    del meta["parts"], meta["sha256"]  # as the first versions saved it (no parts, no checksum)
    state.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="another version of the simulator .* --force"):
        run(load_config(), 50_000, 1, tmp_path / "r", resume=True)
