"""Output folders: --force removes only what a run wrote, a run locks its folder, unfinished parts stay out of
readers' sight, readers check the manifest against the files, and saved progress is checked before a resume."""

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from simulator.api import RunInterrupted, run
from simulator.cli import main
from simulator.config import DEFAULT_CONFIG, load_config
from simulator.results import ResultsError, read_results
from simulator.run_folder import LOCK_FILE, FolderLock
from simulator.storage import Location

CFG = load_config()


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, text):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert text in result.output, result.output


def test_force_leaves_files_it_did_not_write(tmp_path):
    """The issue's case: a folder that never held a run, with the user's files where a run would write."""
    u = tmp_path / "u"
    (u / "paths").mkdir(parents=True)
    (u / "paths" / "thesis.txt").write_text("thesis\n")
    (u / "config.json").write_text('{"mine":1}\n')
    one_line_error(cli("run", "-n", 100, "-q", "-o", u, "--force"), "not written by the simulator")
    assert (u / "paths" / "thesis.txt").read_text() == "thesis\n"
    assert (u / "config.json").read_text() == '{"mine":1}\n'
    assert sorted(p.name for p in u.iterdir()) == ["config.json", "paths"]


def test_force_replaces_a_run_and_its_derived_files_only(tmp_path):
    out = tmp_path / "r"
    assert cli("run", "-n", 70_000, "-q", "-o", out).exit_code == 0  # two parts
    assert cli("sensitivity", out).exit_code == 0
    (out / "notes.txt").write_text("mine")
    one_line_error(cli("run", "-n", 100, "-q", "-o", out, "--force"), "notes.txt: not written by the simulator")
    assert (out / "manifest.json").exists() and (out / "notes.txt").exists()  # nothing removed
    (out / "notes.txt").unlink()
    assert cli("run", "-n", 100, "-q", "-o", out, "--force").exit_code == 0
    assert sorted(p.name for p in (out / "paths").iterdir()) == ["part-00000.parquet"]
    assert not (out / "sensitivity.parquet").exists()
    assert read_results(out).metadata["n_paths"] == 100


def test_force_reports_a_file_it_cannot_remove(tmp_path, monkeypatch):
    out = tmp_path / "r"
    assert cli("run", "-n", 100, "-q", "-o", out).exit_code == 0

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Location, "remove", refuse)
    one_line_error(cli("run", "-n", 100, "-q", "-o", out, "--force"), "cannot remove it to replace the run")


CFG_PATH = DEFAULT_CONFIG


def test_a_scenario_name_cannot_escape_the_output_folder(tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "evil.toml").write_text(f'extends = "{CFG_PATH}"\nname = "../../../outside_scen"\n')
    result = cli("scenarios", scenarios, "-n", 100, "-q", "-o", tmp_path / "out" / "deep")
    one_line_error(result, "name = '../../../outside_scen': expected a plain name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenarios"]


def test_a_config_file_whose_name_is_not_plain_needs_a_name(tmp_path):
    config = tmp_path / "my scenario.toml"
    unnamed = "".join(line for line in CFG_PATH.read_text().splitlines(True) if not line.startswith("name ="))
    config.write_text(unnamed)
    one_line_error(cli("validate", config), 'give the config one with name = "..."')
    config.write_text(f'name = "mine"\n{unnamed}')
    assert cli("validate", config).exit_code == 0


def test_a_locked_folder_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "r"
    assert cli("run", "-n", 100, "-q", "-o", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    lock = FolderLock(Location(out)).acquire()
    try:
        one_line_error(cli("run", "-n", 200, "-q", "-o", out, "--force"),
                       f"another run is writing here (pid {os.getpid()} on ")
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != LOCK_FILE} == before
    finally:
        lock.release()
    assert cli("run", "-n", 200, "-q", "-o", out, "--force").exit_code == 0
    assert not (out / LOCK_FILE).exists()


def test_a_stale_lock_is_taken_over(tmp_path):
    """A run killed with SIGKILL leaves its lock file; the operating system released its lock."""
    out = tmp_path / "r"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": 999_999_999, "host": "gone"}))
    assert cli("run", "-n", 100, "-q", "-o", out).exit_code == 0
    assert read_results(out).metadata["n_paths"] == 100


def leftovers(out, state=False):
    """What an unfinished run of ours leaves after SIGKILL: its lock, a staged part, progress files (with the
    state.json that makes them resumable when ``state``); no manifest."""
    (out / ".paths-unfinished").mkdir(parents=True)
    (out / ".resume").mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": 999_999_999, "host": "gone"}))
    (out / ".paths-unfinished" / "part-00000.parquet").write_bytes(b"PAR1")
    (out / ".resume" / "state-0.npz").write_bytes(b"PK")
    if state:
        (out / ".resume" / "state.json").write_text("{}")


def test_what_an_unfinished_run_left_does_not_block_a_new_run(tmp_path):
    """Issue 33: a folder holding only our leftovers (nothing to resume) is not "not empty": the run removes
    them and says so in one line on stderr."""
    out = tmp_path / "r"
    leftovers(out)
    result = cli("run", "-n", 100, "-q", "-o", out)
    assert result.exit_code == 0, result.output
    assert [line for line in result.stderr.splitlines() if line] == [
        f"{out}: removed what an unfinished run left there (3 files; no manifest, nothing to resume); "
        "starting a new run"]
    assert read_results(out).metadata["n_paths"] == 100
    assert not (out / ".resume").exists() and not (out / ".paths-unfinished").exists()


def test_saved_progress_is_not_a_leftover(tmp_path):
    """Progress that --resume can continue is kept: a new run there still needs --force (or --resume)."""
    out = tmp_path / "r"
    leftovers(out, state=True)
    one_line_error(cli("run", "-n", 100, "-q", "-o", out),
                   "folder exists and is not empty; use --force to replace its results or --resume")
    assert (out / ".resume" / "state-0.npz").exists() and (out / ".paths-unfinished" / "part-00000.parquet").exists()


def test_an_option_error_is_named_before_the_folder(tmp_path):
    """A rejected option in a folder of leftovers (or a finished run) names the option, and changes nothing."""
    out = tmp_path / "r"
    leftovers(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    one_line_error(cli("run", "-n", 101, "--antithetic", "-q", "-o", out), "an antithetic run needs an even number")
    one_line_error(cli("run", "-n", 100, "--target-se", 0, "-q", "-o", out), "--target-se 0.0: expected a positive")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_a_refused_scenario_leaves_no_folder_of_the_others(tmp_path):
    """scenarios: when one scenario's folder is refused, the folders made for those prepared before it go too."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name in ("a", "b"):
        (scenarios / f"{name}.toml").write_text(f'extends = "{CFG_PATH}"\nname = "{name}"\n')
    (tmp_path / "out" / "b").mkdir(parents=True)
    (tmp_path / "out" / "b" / "notes.txt").write_text("mine")
    one_line_error(cli("scenarios", scenarios, "-n", 100, "-q", "-o", tmp_path / "out"),
                   "folder exists and is not empty")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b"]


def test_two_runs_into_one_folder_never_mix(tmp_path):
    """The issue's race: B, started while A runs, is refused; A's files are A's alone."""
    out = tmp_path / "D"
    a = subprocess.Popen([sys.executable, "-m", "simulator", "run", "-n", "3000000", "--keep-paths", "sample:70000",
                          "--threads", "1", "-q", "-o", str(out), "--force"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / LOCK_FILE).exists() and a.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    b = subprocess.run([sys.executable, "-m", "simulator", "run", "-n", "20000", "--seed", "7", "--threads", "1",
                        "-q", "-o", str(out), "--force"], capture_output=True, text=True)
    _, err = a.communicate(timeout=300)
    assert a.returncode == 0, err
    assert b.returncode == 1 and "another run is writing here" in b.stderr and "Traceback" not in b.stderr
    results = read_results(out)
    assert results.metadata["n_paths"] == 3_000_000 and len(results.paths) == 70_000
    assert len(pd.read_parquet(out / "paths")) == 70_000


def interrupted(out, n_paths=200_000, **options):
    asked = []
    with pytest.raises(RunInterrupted):
        run(CFG, n_paths, 1, out, chunk_size=BLOCK, keep_paths="all",
            should_stop=lambda: asked.append(1) or len(asked) >= 2, **options)


BLOCK = 65_536


def test_an_unfinished_run_shows_no_rows_to_dataset_readers(tmp_path):
    out = tmp_path / "r"
    interrupted(out)
    assert not (out / "paths").exists()
    assert ds.dataset(out, format="parquet", exclude_invalid_files=True).count_rows() == 0
    run(CFG, 200_000, 1, out, chunk_size=BLOCK, keep_paths="all", resume=True)
    assert len(pd.read_parquet(out / "paths")) == 200_000


@pytest.mark.parametrize("damage", ["next_id", "truncate_arrays", "zero_state"])
def test_damaged_saved_progress_is_refused(tmp_path, damage):
    out = tmp_path / "r"
    interrupted(out)
    state = out / ".resume" / "state.json"
    if damage == "next_id":
        meta = json.loads(state.read_text())
        meta["next_id"] = 0
        state.write_text(json.dumps(meta))
    elif damage == "truncate_arrays":
        arrays = next((out / ".resume").glob("*.npz"))
        arrays.write_bytes(arrays.read_bytes()[:1000])
    else:
        state.write_bytes(b"\0" * state.stat().st_size)
    with pytest.raises(ValueError, match="saved progress is damaged or was edited .* --force"):
        run(CFG, 200_000, 1, out, chunk_size=BLOCK, keep_paths="all", resume=True)


def disk_full_at(name: str, monkeypatch):
    """Writing a file called ``name`` fails as on a full disk; returns the real writer, to restore."""
    real = Location.write_bytes

    def full(self, data):
        if self.name == name:
            raise OSError(28, "No space left on device")
        real(self, data)

    monkeypatch.setattr(Location, "write_bytes", full)
    return real


def test_a_full_disk_at_the_manifest_fails_in_one_line_and_keeps_progress(tmp_path, monkeypatch):
    out = tmp_path / "r"
    interrupted(out)
    real = disk_full_at("manifest.json", monkeypatch)
    result = cli("run", "-n", 200_000, "--seed", 1, "--chunk-size", BLOCK, "--keep-paths", "all", "-q", "-o", out,
                 "--resume")
    one_line_error(result, "manifest.json: cannot write it (No space left on device)")
    assert not (out / "manifest.json").exists() and not (out / "summary.parquet").exists()
    monkeypatch.setattr(Location, "write_bytes", real)
    run(CFG, 200_000, 1, out, chunk_size=BLOCK, keep_paths="all", resume=True)  # the progress is still there
    assert read_results(out).metadata["n_paths"] == 200_000


def test_a_full_disk_when_saving_progress_keeps_the_earlier_progress(tmp_path, monkeypatch):
    out = tmp_path / "r"
    interrupted(out, 400_000)
    real = disk_full_at("state.json", monkeypatch)
    asked = []
    with pytest.raises(ResultsError, match="the progress could not be saved"):
        run(CFG, 400_000, 1, out, chunk_size=BLOCK, keep_paths="all", resume=True,
            should_stop=lambda: asked.append(1) or len(asked) >= 2)
    monkeypatch.setattr(Location, "write_bytes", real)
    run(CFG, 400_000, 1, out, chunk_size=BLOCK, keep_paths="all", resume=True)
    assert read_results(out).metadata["n_paths"] == 400_000


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "r"
    run(CFG, 70_000, 3, out)
    return out


def edited_copy(finished, tmp_path, edit):
    """A copy of the finished run, then ``edit(folder, manifest)``: the manifest it returns is written back (None:
    the edit wrote what it wanted)."""
    out = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(finished), str(out)], check=True)
    manifest = edit(out, json.loads((out / "manifest.json").read_text()))
    if manifest is not None:
        (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _set(*keys, value):
    def edit(out, manifest):
        node = manifest
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
        return manifest
    return edit


def _pop(*keys):
    def edit(out, manifest):
        manifest[keys[0]].pop(keys[1])
        return manifest
    return edit


def _escape(out, manifest):
    entry = manifest["files"].pop("paths/part-00001.parquet")
    manifest["files"]["paths/../../other/paths/part-00001.parquet"] = entry
    return manifest


def _a_list(out, manifest):
    (out / "manifest.json").write_text("[1, 2]")


def _directory(out, manifest):
    (out / "manifest.json").unlink()
    (out / "manifest.json").mkdir()


def _swap_parts(out, manifest):
    files = manifest["files"]
    a, b = "paths/part-00000.parquet", "paths/part-00001.parquet"
    (out / a).rename(out / "tmp")
    (out / b).rename(out / a)
    (out / "tmp").rename(out / b)
    files[a], files[b] = files[b], files[a]
    return manifest


MANIFEST_EDITS = {
    "edited n_paths": (_set("metadata", "n_paths", value=80_000),
                       "n_paths (70000) differs from the manifest's (80000)"),
    "edited seed": (_set("metadata", "seed", value=4), "seed (3) differs from the manifest's (4)"),
    "no files": (_set("files", value={}), "does not list summary.parquet"),
    "a file outside the folder": (_escape, "not a file a run writes"),
    "files of the wrong type": (_set("files", value=[]), "expected objects 'files' and 'metadata'"),
    "an entry without a checksum": (_set("files", "config.json", value={"rows": None}), "is not {rows, sha256}"),
    "a manifest that is a list": (_a_list, "expected a JSON object, found list"),
    "missing metadata": (_pop("metadata", "seed"), "metadata lacks seed"),
    "metadata of the wrong type": (_set("metadata", "paths_kept", value="all"), "has the wrong type"),
    "a part missing from the list": (_pop("files", "paths/part-00001.parquet"), "lists parts 0 of the per-path rows"),
    "parts swapped": (_swap_parts, "expected the rows of path ids 0..65,535"),
    "a folder named manifest.json": (_directory, "manifest.json: cannot read it"),
}


@pytest.mark.parametrize("what", MANIFEST_EDITS)
def test_readers_check_the_manifest_against_the_files(finished, tmp_path, what):
    edit, message = MANIFEST_EDITS[what]
    out = edited_copy(finished, tmp_path, edit)
    # `show` reads no per-path rows: swapped parts show only to the commands that read them.
    for command in ("show", "sensitivity") if what != "parts swapped" else ("sensitivity",):
        one_line_error(cli(command, out), message)


def test_force_removes_a_report_of_the_run_but_not_someone_elses_chart(tmp_path):
    out = tmp_path / "r"
    assert cli("run", "-n", 2000, "-q", "-o", out, "--report").exit_code == 0
    assert (out / "report.html").exists() and (out / "fan_cash.png").exists()
    assert cli("run", "-n", 2000, "-q", "-o", out, "--force").exit_code == 0
    assert not (out / "report.html").exists() and not (out / "fan_cash.png").exists()
    (out / "tornado.png").write_bytes(b"my own chart")
    one_line_error(cli("run", "-n", 2000, "-q", "-o", out, "--force"), "tornado.png: not written by the simulator")
    assert (out / "tornado.png").read_bytes() == b"my own chart"
