"""Where a run's files live: a local folder, or a URL of any file system fsspec knows (``s3://``,
``gs://``, ``az://``, ``file://``, ``memory://``, ...), behind one small path-like class.

A file appears whole or not at all. On a local file system it is written under a hidden temporary
name in its folder and renamed into place (an atomic rename). Elsewhere, on object stores where a
rename is a copy, it is uploaded in one piece under its final name: an object store shows an object
only once its upload is complete. Either way a run's manifest, written last, says which files belong
to the finished run (with their checksums), and readers trust nothing else.

Credentials and other options of a remote file system come from fsspec's usual sources (environment
variables, the file system's own configuration files).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .errors import SettingsError


def _filesystem(text: str):
    protocol, _ = fsspec.core.split_protocol(text)
    if protocol == "data":
        raise SettingsError(f"{text[:40]}: a data: URL holds the bytes of one file, not a folder of results")
    if protocol is not None and protocol not in fsspec.available_protocols():
        raise SettingsError(f"{text}: unknown protocol {protocol!r}; expected a local path or a URL of a file "
                            "system fsspec knows, such as file://, s3://, gs:// or memory://")
    try:
        return fsspec.core.url_to_fs(text)
    except Exception as e:  # a missing package (ImportError) or a failed connection: each backend its own way
        raise SettingsError(f"{text}: cannot use this location ({first_line(e)})") from None


def first_line(error: BaseException) -> str:
    """The gist of a file-system error, on one line."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0]


class Location:
    """A file or folder on some file system. ``str()`` gives it as the user wrote it, for messages;
    ``location / "name"`` is a file or folder in it."""

    fs: fsspec.AbstractFileSystem
    path: str  # the file system's own path
    text: str

    def __init__(self, where: str | os.PathLike | Location):
        if isinstance(where, Location):
            self.fs, self.path, self.text = where.fs, where.path, where.text
            return
        text = os.fspath(where)
        self.fs, self.path = _filesystem(text)
        stripped = text.rstrip("/")
        self.text = stripped if stripped and not stripped.endswith(":") else text

    def __truediv__(self, name: str) -> Location:
        child = object.__new__(Location)
        sep = "" if self.text.endswith("/") else "/"
        child.fs, child.path, child.text = self.fs, f"{self.path.rstrip('/')}/{name}", f"{self.text}{sep}{name}"
        return child

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Location({self.text!r})"

    def __fspath__(self) -> str:
        if self.local is None:
            raise TypeError(f"{self}: not a path on this machine")
        return self.path

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def local(self) -> Path | None:
        """The path on this machine's file system; None for a remote location."""
        return Path(self.path) if isinstance(self.fs, LocalFileSystem) else None

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path)

    def names(self) -> list[str]:
        """Names of the entries of this folder (none when it does not exist)."""
        try:
            entries = self.fs.ls(self.path, detail=False)
        except FileNotFoundError:
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in entries)

    def mkdir(self) -> None:
        """Create this folder and its parents, if missing."""
        self.fs.makedirs(self.path, exist_ok=True)

    def remove(self) -> None:
        """Remove this file, if there is one."""
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            pass

    def remove_tree(self) -> None:
        """Remove this folder and everything in it, if there is one."""
        if self.exists():
            self.fs.rm(self.path, recursive=True)

    def move_to(self, target: Location) -> None:
        """Rename this file or folder to ``target`` (on the same file system; a copy on an object store)."""
        if self.local is not None:
            os.rename(self.path, target.path)
        else:
            self.fs.mv(self.path, target.path, recursive=True)

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def write_bytes(self, data: bytes | memoryview) -> None:
        """Write the whole file so that it appears whole or not at all (see the module docstring)."""
        target = self.local
        if target is None:
            self.fs.pipe_file(self.path, data)
            return
        # A unique temporary name: two attempts at the same task (a retry) may write at once.
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def sha256(self) -> str:
        h = hashlib.sha256()
        with self.fs.open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
