"""Runs on a Dask cluster equal the local run bit for bit: exact and streaming runs, a worker killed
mid-run, an interrupted cluster run resumed locally, scenarios on one client, and the CLI."""

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from click.testing import CliRunner  # noqa: E402

from simulator import distributed as dist  # noqa: E402
from simulator.api import RunInterrupted, run  # noqa: E402
from simulator.cli import main  # noqa: E402
from simulator.config import load_config  # noqa: E402
from simulator.engine import simulate  # noqa: E402
from simulator.results import read_results  # noqa: E402
from simulator.samples import BLOCK_PATHS, PILOT_PATHS  # noqa: E402
from simulator.scenarios import load_scenarios, run_scenarios  # noqa: E402
from simulator.summary import by_year_frame, paths_table, summary_frame  # noqa: E402

from conftest import assert_tables_equal  # noqa: E402

CFG = load_config()


@pytest.fixture(scope="module")
def client():
    with dist.connect(workers=2) as c:
        yield c


def assert_same_results(a, b):
    for name in ("summary", "by_year", "paths"):
        x, y = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)


@pytest.mark.parametrize("n_paths, keep", [(150_000, "all"), (PILOT_PATHS + 70_000, "sample:70000")])
def test_cluster_run_equals_local_run(tmp_path, client, n_paths, keep):
    local = run(CFG, n_paths, 3, tmp_path / "local", keep_paths=keep, threads=1)
    on_cluster = run(CFG, n_paths, 3, tmp_path / "cluster", keep_paths=keep, scheduler=client)
    assert on_cluster.metadata["runtime"]["cluster"].startswith("dask")
    assert_same_results(local, on_cluster)
    assert_same_results(read_results(tmp_path / "local"), read_results(tmp_path / "cluster"))


def test_a_worker_killed_mid_run_changes_nothing(client):
    n = PILOT_PATHS + 3 * BLOCK_PATHS + 1234
    merged = []
    victim = sorted(client.scheduler_info()["workers"])[-1]
    pid = client.run(os.getpid, workers=[victim])[victim]

    def progress(k):
        merged.append(k)
        if len(merged) == 1:  # the first block is merged; others are running on both workers
            os.kill(pid, signal.SIGKILL)

    expected = simulate(CFG, n, 9, keep_paths="sample:100000", threads=1)
    got = dist.simulate(CFG, n, 9, client, threads=1, keep_paths="sample:100000", progress=progress)
    assert sum(merged) == n
    assert got.counts == expected.counts
    assert_tables_equal(paths_table(expected), paths_table(got))
    pd.testing.assert_frame_equal(summary_frame(CFG, n, expected.counts, expected.samples),
                                  summary_frame(CFG, n, got.counts, got.samples), check_exact=True)
    pd.testing.assert_frame_equal(by_year_frame(CFG, expected.samples), by_year_frame(CFG, got.samples),
                                  check_exact=True)
    client.wait_for_workers(2, timeout=60)


def test_interrupted_cluster_run_resumes_locally(tmp_path, client):
    n = PILOT_PATHS + 2 * BLOCK_PATHS
    asked = []
    with pytest.raises(RunInterrupted):
        run(CFG, n, 4, tmp_path / "r", keep_paths="none", scheduler=client,
            should_stop=lambda: asked.append(1) or len(asked) >= 3)
    resumed = run(CFG, n, 4, tmp_path / "r", keep_paths="none", resume=True, threads=1)
    assert_same_results(run(CFG, n, 4, keep_paths="none", threads=1), resumed)


def test_scenarios_share_one_client(tmp_path, client):
    scenarios = load_scenarios()[:2]
    a = run_scenarios(scenarios, 5_000, 1, tmp_path / "local")
    b = run_scenarios(load_scenarios()[:2], 5_000, 1, tmp_path / "cluster", scheduler=client)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_cli_workers(tmp_path):
    runner = CliRunner()
    for out, extra in (("local", []), ("cluster", ["--workers", "1"])):
        result = runner.invoke(main, ["run", "-n", "3000", "--seed", "2", "-o", str(tmp_path / out), "-q", *extra])
        assert result.exit_code == 0, result.output
    assert_same_results(read_results(tmp_path / "local"), read_results(tmp_path / "cluster"))


def test_the_library_does_not_import_dask():
    code = ("import sys, simulator, simulator.api, simulator.cli, simulator.scenarios; "
            "sys.exit(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
