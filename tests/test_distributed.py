"""Runs on a Dask cluster write the same files as local runs, byte for byte: exact and streaming runs,
workers killed mid-run, a file:// URL as the output, interrupted runs resumed on the other engine,
scenarios submitted at once to one client, and the CLI."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from click.testing import CliRunner  # noqa: E402
from dask.utils import key_split  # noqa: E402

from simulator import distributed as dist  # noqa: E402
from simulator.api import RunInterrupted, run  # noqa: E402
from simulator.cli import main  # noqa: E402
from simulator.config import load_config  # noqa: E402
from simulator.results import ResultsError, read_results  # noqa: E402
from simulator.samples import BLOCK_PATHS, PILOT_PATHS  # noqa: E402
from simulator.scenarios import load_scenarios, run_scenarios  # noqa: E402
from simulator.storage import Location  # noqa: E402

CFG = load_config()


@pytest.fixture(scope="module")
def client():
    with dist.connect(workers=2) as c:
        yield c


def assert_same_results(a, b):
    for name in ("summary", "by_year", "paths"):
        x, y = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)


def assert_same_files(a, b):
    """Two run folders hold the same files byte for byte: every table, config.json and each part of the
    paths/ dataset (and nothing else there), all listed by their manifests with the same checksums."""
    files = [json.loads((folder / "manifest.json").read_text())["files"] for folder in (a, b)]
    assert files[0] == files[1]
    parts = sorted(name[len("paths/"):] for name in files[0] if name.startswith("paths/"))
    assert parts and sorted(os.listdir(a / "paths")) == sorted(os.listdir(b / "paths")) == parts
    for name in files[0]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("n_paths, keep", [(150_000, "all"), (PILOT_PATHS + 70_000, "sample:70000")])
def test_cluster_run_equals_local_run(tmp_path, client, n_paths, keep):
    local = run(CFG, n_paths, 3, tmp_path / "local", keep_paths=keep, threads=1)
    on_cluster = run(CFG, n_paths, 3, tmp_path / "cluster", keep_paths=keep, scheduler=client)
    assert on_cluster.metadata["runtime"]["cluster"].startswith("dask")
    assert_same_results(local, on_cluster)
    assert_same_results(read_results(tmp_path / "local"), read_results(tmp_path / "cluster"))
    assert_same_files(tmp_path / "local", tmp_path / "cluster")


@pytest.mark.parametrize("keep", ["all", "sample:70000"])
def test_cluster_run_with_actuals_equals_local_run(tmp_path, client, keep):
    """A run updated on reported figures: its weights and weighted summaries are the same on a cluster."""
    n_paths = 2 * BLOCK_PATHS + 5000
    local = run(CFG, n_paths, 3, tmp_path / "local", keep_paths=keep, threads=1, actuals="2026h1")
    on_cluster = run(CFG, n_paths, 3, tmp_path / "cluster", keep_paths=keep, scheduler=client, actuals="2026h1")
    assert "weight" in on_cluster.paths.columns and "ess" in set(on_cluster.summary.metric)
    assert_same_results(local, on_cluster)
    assert_same_files(tmp_path / "local", tmp_path / "cluster")


def test_a_changed_part_fails_the_comparison_and_readers_refuse_it(tmp_path, client):
    run(CFG, BLOCK_PATHS + 100, 8, tmp_path / "local", threads=1)
    run(CFG, BLOCK_PATHS + 100, 8, tmp_path / "cluster", scheduler=client)  # parts written by the tasks
    part = tmp_path / "cluster" / "paths" / "part-00001.parquet"
    for change in ("modified", "deleted"):
        copy = tmp_path / change
        shutil.copytree(tmp_path / "cluster", copy)
        target = copy / part.relative_to(tmp_path / "cluster")
        if change == "modified":
            run(CFG, BLOCK_PATHS + 100, 9, tmp_path / "other", threads=1)  # a part of another run, same size
            shutil.copy(tmp_path / "other" / "paths" / "part-00001.parquet", target)
        else:
            target.unlink()
        with pytest.raises(AssertionError):
            assert_same_files(tmp_path / "local", copy)
        with pytest.raises(ResultsError, match="checksum differs" if change == "modified" else "missing"):
            read_results(copy)
    assert_same_files(tmp_path / "local", tmp_path / "cluster")


@pytest.mark.parametrize("victims, after", [
    ("last", 1),  # the first block is merged; others are running (and writing parts) on both workers
    # The pilot and a block with bins are merged: every copy of the scattered config and bins is lost with
    # the finished and running blocks, and the run must scatter them again.
    ("all", 3),
])
def test_killed_workers_mid_run_change_nothing(tmp_path, client, victims, after):
    n = PILOT_PATHS + 3 * BLOCK_PATHS + 1234
    merged = []
    workers = sorted(client.scheduler_info()["workers"])
    pids = client.run(os.getpid, workers=workers[-1:] if victims == "last" else workers)

    def progress(k):
        merged.append(k)
        if len(merged) == after:
            for pid in pids.values():
                os.kill(pid, signal.SIGKILL)

    local = run(CFG, n, 9, tmp_path / "local", keep_paths="sample:100000", threads=1)
    on_cluster = run(CFG, n, 9, tmp_path / "cluster", keep_paths="sample:100000", scheduler=client,
                     progress=progress)
    assert len(merged) > after and sum(merged) == n
    assert_same_results(local, on_cluster)
    assert_same_files(tmp_path / "local", tmp_path / "cluster")
    client.wait_for_workers(2, timeout=60)


def test_a_file_url_as_output_equals_a_local_folder(tmp_path, client):
    local = run(CFG, BLOCK_PATHS + 5_000, 6, tmp_path / "local", threads=1)
    url = (tmp_path / "url").as_uri()
    assert url.startswith("file:///")
    on_cluster = run(CFG, BLOCK_PATHS + 5_000, 6, url, scheduler=client)
    assert_same_results(local, on_cluster)
    assert_same_results(local, read_results(url))
    assert_same_files(tmp_path / "local", tmp_path / "url")


def test_an_output_the_workers_cannot_reach_is_refused_when_they_write_rows(client):
    # memory:// lives inside one process: the workers do not see what the driver writes there.
    unshared = Location(f"memory://unshared-{uuid.uuid4().hex}")
    with pytest.raises(ValueError, match="workers .* cannot reach it"):
        run(CFG, 1_000, 1, unshared / "rows", scheduler=client)
    # Without kept rows the driver writes every file: the workers need not reach the output.
    kept_none = run(CFG, 1_000, 1, unshared / "none", scheduler=client, keep_paths="none")
    assert_same_results(run(CFG, 1_000, 1, keep_paths="none", threads=1), kept_none)
    unshared.remove_tree()


@pytest.mark.parametrize("first, keep, n, stop_after", [
    ("cluster", "none", PILOT_PATHS + 2 * BLOCK_PATHS, 3),          # histograms saved
    ("cluster", "sample:70000", PILOT_PATHS + 2 * BLOCK_PATHS, 3),  # the parts the tasks wrote are kept
    ("local", "all", 150_000, 2),  # chunks of 50,000: resumed on the cluster in the middle of a block
])
def test_interrupted_runs_resume_on_the_other_engine(tmp_path, client, first, keep, n, stop_after):
    engines = {"cluster": dict(scheduler=client), "local": dict(threads=1, chunk_size=50_000)}
    asked = []
    with pytest.raises(RunInterrupted):
        run(CFG, n, 4, tmp_path / "r", keep_paths=keep, should_stop=lambda: asked.append(1) or len(asked) >= stop_after,
            **engines[first])
    second = "local" if first == "cluster" else "cluster"
    resumed = run(CFG, n, 4, tmp_path / "r", keep_paths=keep, resume=True, **engines[second])
    whole = run(CFG, n, 4, tmp_path / "whole", keep_paths=keep, threads=1)
    assert_same_results(whole, resumed)
    assert_same_files(tmp_path / "whole", tmp_path / "r")


def test_scenarios_are_submitted_at_once_and_equal_their_local_runs(tmp_path, client):
    n = BLOCK_PATHS + 5_000  # two blocks each
    local = run_scenarios(load_scenarios()[:2], n, 1, tmp_path / "local")
    scenarios = load_scenarios()[:2]
    with distributed.get_task_stream(client) as stream:
        on_cluster = run_scenarios(scenarios, n, 1, tmp_path / "cluster", scheduler=client)
    pd.testing.assert_frame_equal(local, on_cluster, check_exact=True)
    for s in scenarios:
        assert_same_files(tmp_path / "local" / s.name, tmp_path / "cluster" / s.name)
    # Task keys name their run: the two scenarios' tasks ran during overlapping spans of time
    # (one after the other, the second would start after the first's last task ended).
    spans = {}
    for task in stream.data:
        for ss in task["startstops"]:
            if ss["action"] == "compute":
                spans.setdefault(key_split(task["key"]), []).append((ss["start"], ss["stop"]))
    assert sorted(spans) == sorted(s.name for s in scenarios)
    (a, b) = spans.values()
    assert min(start for start, _ in b) < max(stop for _, stop in a)
    assert min(start for start, _ in a) < max(stop for _, stop in b)


def test_cli_default_run_on_two_workers_writes_the_files_of_a_local_run(tmp_path):
    """The issue's definition of done: the default config, on 2 local workers, gives the same files."""
    for out, extra in (("local", []), ("cluster", ["--workers", "2"])):
        done = subprocess.run([sys.executable, "-m", "simulator", "run", "-q", "-o", str(tmp_path / out), *extra],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert_same_files(tmp_path / "local", tmp_path / "cluster")


def test_cli_workers(tmp_path):
    runner = CliRunner()
    for out, extra in (("local", []), ("cluster", ["--workers", "1"])):
        result = runner.invoke(main, ["run", "-n", "3000", "--seed", "2", "-o", str(tmp_path / out), "-q", *extra])
        assert result.exit_code == 0, result.output
    assert_same_results(read_results(tmp_path / "local"), read_results(tmp_path / "cluster"))
    assert_same_files(tmp_path / "local", tmp_path / "cluster")


def test_the_library_does_not_import_dask():
    code = ("import sys, simulator, simulator.api, simulator.cli, simulator.scenarios; "
            "sys.exit(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------------------------------------------------------------- --scheduler: reaching it, and over TLS


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A self-signed certificate (CA, scheduler and client at once) and a TLS-only scheduler on 127.0.0.1 with one
    in-process worker; nothing leaves this machine."""
    folder = tmp_path_factory.mktemp("tls")
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                           "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
                           "-subj", "/CN=localhost",
                           "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"openssl cannot make a certificate here: {done.stderr.strip()[:200]}")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    roles = {f"tls_{role}_{kind}": path for role in ("scheduler", "worker", "client")
             for kind, path in (("cert", cert), ("key", key))}
    security = distributed.Security(tls_ca_file=cert, require_encryption=True, **roles)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://",
                                  host="127.0.0.1", security=security, dashboard_address=None) as cluster:
        settings = folder / "security.yaml"
        # Relative file names: relative to the settings file's folder.
        settings.write_text("tls_ca_file: cert.pem\ntls_client_cert: cert.pem\ntls_client_key: key.pem\n"
                            "require_encryption: true\n")
        yield cluster.scheduler_address, settings, cert, key


def test_a_tls_scheduler_is_reached_with_a_security_file_or_with_dasks_configuration(tls):
    address, settings, cert, key = tls
    assert address.startswith("tls://")
    with dist.connect(scheduler=dist.Scheduler(address, settings)) as client:
        assert client.scheduler_info()["address"] == address
    import dask

    with dask.config.set({"distributed.comm.tls.ca-file": cert, "distributed.comm.tls.client.cert": cert,
                          "distributed.comm.tls.client.key": key}):
        with dist.connect(scheduler=address) as client:
            assert client.scheduler_info()["address"] == address
    with pytest.raises(ValueError, match=f"--scheduler {address}: cannot connect to the Dask scheduler"):
        with dist.connect(scheduler=address):  # no certificate: refused at once, on one line
            pass


def test_cli_run_over_tls_equals_a_local_run(tls, tmp_path):
    address, settings, *_ = tls
    runner = CliRunner()
    for out, extra in (("local", []), ("cluster", ["--scheduler", address, "--scheduler-security", str(settings)])):
        result = runner.invoke(main, ["run", "-n", "2000", "--seed", "2", "-o", str(tmp_path / out), "-q", *extra])
        assert result.exit_code == 0, result.output
    assert read_results(tmp_path / "cluster").metadata["runtime"]["cluster"].startswith(f"dask {address}")
    assert_same_files(tmp_path / "local", tmp_path / "cluster")


@pytest.mark.parametrize("text, message", [
    ("tls_ca_file: cert.pem\ntls_scheduler_key: key.pem\n", "tls_scheduler_key: unknown key (expected one of"),
    ("tls_ca_file: nowhere.pem\n", "tls_ca_file = 'nowhere.pem': no such file"),
    ("require_encryption: maybe\n", "require_encryption = 'maybe': expected true or false"),
    ("- tls_ca_file\n", "holds list"),
    ("tls_ca_file: [\n", "not valid YAML or JSON"),
    ('{"tls_ca_file": 3}', "tls_ca_file = 3: expected a string"),
])
def test_a_bad_security_file_is_one_line_naming_the_key(tls, tmp_path, text, message):
    settings = tmp_path / "security.yaml"
    settings.write_text(text)
    (tmp_path / "cert.pem").write_text("")
    result = CliRunner().invoke(main, ["run", "-n", "10", "-q", "-o", str(tmp_path / "out"),
                                       "--scheduler", tls[0], "--scheduler-security", str(settings)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert f"--scheduler-security {settings}: {message}" in result.output
    assert not (tmp_path / "out").exists()


def test_an_unreachable_scheduler_is_one_line_within_30_s_and_writes_nothing(tmp_path):
    previous = tmp_path / "out"
    assert CliRunner().invoke(main, ["run", "-n", "10", "-q", "-o", str(previous)]).exit_code == 0
    before = sorted(p.relative_to(previous) for p in previous.rglob("*"))
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["run", "-n", "10", "-q", "-o", str(previous), "--force",
                                       "--scheduler", "tcp://127.0.0.1:9"])
    assert time.perf_counter() - started < 30
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "--scheduler tcp://127.0.0.1:9: cannot connect to the Dask scheduler" in result.output
    assert sorted(p.relative_to(previous) for p in previous.rglob("*")) == before  # --force removed nothing


def test_the_scheduler_must_be_trusted_says_the_help():
    result = CliRunner().invoke(main, ["run", "--help"])
    assert "trust" in result.output and "--scheduler-security" in result.output
