"""A run's output folder: which of its files a run of ours wrote, the lock a run holds on it, and making it
ready for a new run.

The simulator never deletes or overwrites a file it did not write. ``--force`` replaces a run's own files
only: those its manifest or its saved progress names, the files derived from it (``simulator sensitivity``,
``simulator report``) and the leftovers of an unfinished run (its staged parts, temporary files). Any other
file in the folder stops the new run with one line naming it.

While a run writes, it holds a lock on its folder (``.lock``, with its pid and host), so that a second run
into the same folder is refused instead of mixing its parts with the first's or deleting them. On a local
file system the lock is an advisory ``flock``: the operating system releases it when the process ends, so a
crashed run's lock is taken over by the next run. On other file systems (object stores have no locks) it is
a plain object: a run refuses a folder that has one, and the message says how to remove a stale one.

A run that fails before it has results or saved progress (a rejected option found late, a cluster that cannot
start, a weighted run whose figures no path explains) leaves nothing behind: the folders it made are removed
again (:func:`discard_new`), so the corrected command is not refused. A folder that holds only what such a run
of ours left (the lock, staged parts, temporary files, progress files without the ``state.json`` that names
them; no manifest) is not "not empty" for a new run: the run removes them and says so.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
from contextlib import suppress
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq

from .report_files import report_files_of
from .results import (
    CONFIG_FILE,
    DERIVED_TABLES,
    MANIFEST,
    METADATA_KEY,
    PATHS_DIR,
    RESUME_DIR,
    STAGING_DIR,
    STEP_TABLE,
    TABLES,
    ResultsError,
    staged_part_name,
)
from .storage import Location, first_line

LOCK_FILE = ".lock"
PROBE = ".write-test"
_STATE = re.compile(r"state\.json|state-\d+\.npz")  # saved progress (engine.RunState.save)
# Written under a hidden temporary name, then renamed into place (storage.Location.write_bytes).
_TEMPORARY = re.compile(r"\..+\.tmp-[0-9a-f]{32}")
_PART = re.compile(r"part-\d{5,}\.parquet")


class FolderLock:
    """An exclusive lock on a run folder, held from :func:`prepare_folder` until :meth:`release`."""

    def __init__(self, folder: Location):
        self.folder = folder
        self.path = folder / LOCK_FILE
        self.fd: int | None = None
        self.held = False
        # The folders prepare_folder made for the run (the run folder and missing parents, deepest first):
        # removed again by discard_new when the run ends with nothing to keep.
        self.created: list[Path] = []

    def acquire(self) -> FolderLock:
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        if self.path.local is None:
            if self.path.exists():
                raise ResultsError(f"{self.folder}: another run is writing here ({_holder(self.path)}); wait for "
                                   f"it, or remove {self.path} if that run is gone")
            self.path.write_text(json.dumps(me))
            self.held = True
            return self
        while True:
            fd = os.open(self.path.local, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ResultsError(f"{self.folder}: another run is writing here ({_holder(self.path)}); wait for "
                                   "it to finish or choose another --out") from None
            # The holder before us may have removed the file between our open and our lock: lock the file
            # that is there now, not an unlinked one.
            try:
                same = os.stat(self.path.local).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(me).encode())
        self.fd, self.held = fd, True
        return self

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        with suppress(OSError):
            self.path.remove()  # before the unlock: a run waiting on this file then retries on a new one
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def _holder(lock: Location) -> str:
    try:
        who = json.loads(lock.read_text())
        return f"pid {int(who['pid'])} on {str(who['host'])[:64]}"
    except Exception:  # an empty or foreign lock file: say what we know
        return f"see {lock}"


def _listed(folder: Location, name: str) -> dict:
    """A JSON object file of ours (the manifest, the saved progress), or {} when absent or unreadable."""
    try:
        value = json.loads((folder / name).read_text())
    except Exception:  # missing, truncated or not ours: it then names nothing
        return {}
    return value if isinstance(value, dict) else {}


def _is_our_parquet(path: Location) -> bool:
    try:
        with path.fs.open(path.path, "rb") as f:
            return METADATA_KEY in (pq.read_schema(f).metadata or {})
    except Exception:  # missing, or not Parquet: not one of ours
        return False


def _is_ours_by_name(name: str) -> bool:
    """Files that only a run of ours writes, whatever the manifest says: the lock, the write probe, temporary
    files, the staged parts of an unfinished run."""
    *folders, base = name.split("/")
    if not folders:
        return name in (LOCK_FILE, PROBE) or _TEMPORARY.fullmatch(base) is not None
    if folders == [STAGING_DIR]:
        return _PART.fullmatch(base) is not None or _TEMPORARY.fullmatch(base) is not None
    if folders == [RESUME_DIR]:
        return _STATE.fullmatch(base) is not None or _TEMPORARY.fullmatch(base) is not None
    return folders == [PATHS_DIR] and _TEMPORARY.fullmatch(base) is not None


def owned_files(folder: Location) -> set[str]:
    """The files in ``folder`` (relative names) that a run of ours wrote and ``--force`` may remove."""
    names: set[str] = set()
    manifest = _listed(folder, MANIFEST)
    files = manifest.get("files")
    if isinstance(files, dict):
        names |= {MANIFEST, *(n for n in files if isinstance(n, str))}
        # Written later from this run, so not in its manifest, and removed with it: where they are ours.
        names |= {f"{name}.parquet" for name in DERIVED_TABLES if _is_our_parquet(folder / f"{name}.parquet")}
        names |= set(report_files_of(folder))
    return names


def _entries(folder: Location) -> list[str]:
    """Every file below ``folder``, as names relative to it."""
    root = folder.path.rstrip("/") + "/"
    try:
        found = folder.fs.find(folder.path, withdirs=False)
    except FileNotFoundError:
        return []
    return sorted(p[len(root):] if p.startswith(root) else p for p in found)


def foreign_files(folder: Location) -> list[str]:
    """Files in ``folder`` that no run of ours wrote (see :func:`owned_files`)."""
    owned = owned_files(folder)
    return [name for name in _entries(folder) if name not in owned and not _is_ours_by_name(name)]


def _missing_folders(out: Location) -> list[Path]:
    """The folders of a local ``out`` that do not exist yet, deepest first (none for a remote location)."""
    if out.local is None:
        return []
    missing = []
    for folder in (out.local.absolute(), *out.local.absolute().parents):
        if folder.exists() or folder.is_symlink():
            break
        missing.append(folder)
    return missing


def prepare_folder(out: str | Path | Location, force: bool, resume: bool = False,
                   note: Callable[[str], None] | None = None) -> tuple[Location, FolderLock]:
    """Lock ``out`` and make it ready for a run: an existing run there is replaced only with ``force`` (its own
    files, nothing else), or continued with ``resume`` (its staged parts stay); what an unfinished run left
    (no manifest, nothing to resume) is removed, and ``note`` told so in one line. Returns the folder and its
    lock, which the caller releases when the run has ended (and then :func:`discard_new` if it failed)."""
    out = Location(out)
    missing: list[Path] = []
    try:
        if out.exists() and not out.is_dir():
            raise ResultsError(f"{out}: exists and is not a folder")
        missing = _missing_folders(out)
        out.mkdir()
    except ResultsError:
        raise
    except Exception as e:  # a parent that is a file, a read-only place: each file system in its own way
        raise ResultsError(f"{out}: cannot write results there ({first_line(e)})") from None
    lock = FolderLock(out)
    lock.created = missing
    stale_lock = not missing and (out / LOCK_FILE).exists()  # left by a run that ended without releasing it
    try:
        lock.acquire()
    except ResultsError:
        _remove_created(missing)
        raise
    except Exception as e:
        _remove_created(missing)
        raise ResultsError(f"{out}: cannot write results there ({first_line(e)})") from None
    try:
        _clear(out, force, resume, note, stale_lock)
        (out / STAGING_DIR).mkdir()
        probe = out / PROBE
        probe.write_bytes(b"")
        probe.remove()
    except ResultsError:
        lock.release()
        discard_new(out, lock)
        raise
    except Exception as e:  # each file system fails in its own way; here they all mean the same
        lock.release()
        discard_new(out, lock)
        raise ResultsError(f"{out}: cannot write results there ({first_line(e)})") from None
    return out, lock


def _clear(out: Location, force: bool, resume: bool, note: Callable[[str], None] | None = None,
           stale_lock: bool = False) -> None:
    has_progress = (out / RESUME_DIR / "state.json").exists()
    if resume:
        if not has_progress:
            raise ResultsError(f"{out}: no interrupted run to resume here (no {RESUME_DIR}/state.json)")
        (out / MANIFEST).remove()
        return
    entries = [n for n in _entries(out) if n != LOCK_FILE]
    if not has_progress and all(_is_ours_by_name(n) for n in entries):
        # Nothing here is a result or progress to resume: only what an unfinished run of ours left.
        for name in entries:
            try:
                (out / name).remove()
            except OSError as e:
                raise ResultsError(f"{out / name}: cannot remove what an unfinished run left ({first_line(e)})"
                                   ) from None
        for folder in (PATHS_DIR, STAGING_DIR, RESUME_DIR):
            _remove_empty(out / folder)
        left = [*([LOCK_FILE] if stale_lock else []), *entries]
        if left and note is not None:
            files = f"{len(left)} files" if len(left) > 1 else left[0]
            note(f"{out}: removed what an unfinished run left there ({files}; no manifest, nothing to resume); "
                 "starting a new run")
        return
    if not force:
        hint = " or --resume to continue the interrupted run" if has_progress else ""
        raise ResultsError(f"{out}: folder exists and is not empty; use --force to replace its results{hint}")
    foreign = foreign_files(out)
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise ResultsError(f"{out / foreign[0]}: not written by the simulator{more}; --force replaces only a run's "
                           "own files: move it away or choose another --out")
    # The manifest first: from then on the folder no longer claims to hold a finished run.
    order = sorted(entries, key=lambda n: n != MANIFEST)
    for name in order:
        try:
            (out / name).remove()
        except OSError as e:
            raise ResultsError(f"{out / name}: cannot remove it to replace the run ({first_line(e)})") from None
    for folder in (PATHS_DIR, STAGING_DIR, RESUME_DIR):
        _remove_empty(out / folder)


def _remove_empty(folder: Location) -> None:
    with suppress(FileNotFoundError, OSError):
        if folder.is_dir() and not folder.names():
            folder.fs.rmdir(folder.path)


def _remove_created(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; one that is not empty (someone else's files) stays
        with suppress(OSError):
            folder.rmdir()


def discard_new(out: Location, lock: FolderLock) -> None:
    """After a run failed with nothing to keep (no results, no saved progress to resume), in a folder that
    :func:`prepare_folder` made for it: remove what the run left and the folders made, so that nothing is
    left behind. Call it after ``lock.release()``. A folder that existed before is left as it is."""
    if not lock.created or (out / RESUME_DIR / "state.json").exists() or (out / MANIFEST).exists():
        return
    for name in _entries(out):
        if _is_ours_by_name(name):
            with suppress(OSError):
                (out / name).remove()
    for folder in (PATHS_DIR, STAGING_DIR, RESUME_DIR):
        _remove_empty(out / folder)
    _remove_created(lock.created)


def remove_unfinished(out: Location) -> None:
    """After a run failed while writing its files: remove what it wrote, so that nothing looks like a result.
    Staged parts stay where saved progress names them, so that ``--resume`` can still continue."""
    for name in (MANIFEST, CONFIG_FILE, *(f"{t}.parquet" for t in (*TABLES, STEP_TABLE))):
        with suppress(OSError):
            (out / name).remove()
    progress = _listed(out, f"{RESUME_DIR}/state.json")
    parts = progress.get("parts")
    keep = {staged_part_name(int(i)) for i in parts if str(i).isdigit()} if isinstance(parts, dict) else set()
    staging = out / STAGING_DIR
    for name in staging.names():
        if f"{STAGING_DIR}/{name}" not in keep and _is_ours_by_name(f"{STAGING_DIR}/{name}"):
            with suppress(OSError):
                (staging / name).remove()
    _remove_empty(staging)
