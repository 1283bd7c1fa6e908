"""Run folders at fsspec URLs (memory:// here, in one process): the same files as a local folder, read back,
resumed after an interruption and reported on; a URL nothing can write to is refused in one line."""

import json
import uuid

import pandas as pd
import pytest
from click.testing import CliRunner

from simulator.api import RunInterrupted, run
from simulator.cli import main
from simulator.config import load_config
from simulator.results import read_results
from simulator.storage import Location

CFG = load_config()


@pytest.fixture
def url():
    """A fresh memory:// folder, removed afterwards (the memory file system lives as long as the process)."""
    where = Location(f"memory://test-{uuid.uuid4().hex}/run")
    yield str(where)
    where.remove_tree()


def assert_same_files(local, url):
    """Every file the local run's manifest lists has the same bytes at the URL."""
    files = json.loads((local / "manifest.json").read_text())["files"]
    assert json.loads((Location(url) / "manifest.json").read_text())["files"] == files
    assert [name for name in files if name.startswith("paths/")] == ["paths/part-00000.parquet",
                                                                     "paths/part-00001.parquet"]
    for name in files:
        assert (Location(url) / name).read_bytes() == (local / name).read_bytes(), name


def test_a_run_at_a_url_writes_the_files_of_a_local_run(tmp_path, url):
    local = run(CFG, 70_000, 2, tmp_path / "local")
    remote = run(CFG, 70_000, 2, url)
    assert_same_files(tmp_path / "local", url)
    for res in (remote, read_results(url)):
        for name in ("summary", "by_year", "paths"):
            pd.testing.assert_frame_equal(getattr(local, name), getattr(res, name), check_exact=True)


def test_an_interrupted_run_at_a_url_resumes_to_the_same_files(tmp_path, url):
    asked = []
    with pytest.raises(RunInterrupted, match="--resume"):
        run(CFG, 70_000, 4, url, chunk_size=30_000, should_stop=lambda: asked.append(1) or len(asked) >= 2)
    assert (Location(url) / ".resume" / "state.json").exists()
    run(CFG, 70_000, 4, url, chunk_size=30_000, resume=True)
    run(CFG, 70_000, 4, tmp_path / "local")
    assert_same_files(tmp_path / "local", url)
    assert not (Location(url) / ".resume").exists()


def test_commands_read_and_report_a_run_at_a_url(url):
    """The run from the library (from the command line a memory:// folder would end with the command)."""
    runner = CliRunner()
    run(CFG, 2000, CFG.simulation.seed, url)
    shown = runner.invoke(main, ["show", url])
    assert shown.exit_code == 0 and "2,000 paths" in shown.output
    replayed = runner.invoke(main, ["replay", url, "--path", "1999"])
    assert replayed.exit_code == 0 and "matches the run's stored row" in replayed.output
    reported = runner.invoke(main, ["report", url])
    assert reported.exit_code == 0, reported.output
    assert "<html" in (Location(url) / "report.html").read_text()
    refused = runner.invoke(main, ["run", "-n", "2000", "-q", "-o", url])
    assert refused.exit_code == 1 and "a memory:// folder ends with the command" in refused.output
