"""Which per-path rows a run keeps (``--keep-paths``), parsed once where it enters the program."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SettingsError

KEEP_ALL_UP_TO = 1_000_000
DEFAULT_SAMPLE = 100_000


@dataclass(frozen=True)
class KeepPaths:
    """The per-path rows to keep: every path's (``all``), none, the first ``count`` path ids (``sample:N``),
    or the default (``count`` None and ``all`` False: every row up to a million paths, else a sample of 100,000).

    >>> KeepPaths.parse("sample:100").rows(1_000)
    100
    >>> KeepPaths.option(1_000, 1_000)
    'all'
    """

    count: int | None = None  # rows of a sample (0: none); None: every row (``every``) or the default
    every: bool = False

    @classmethod
    def parse(cls, value: KeepPaths | str | int | None) -> KeepPaths:
        """``"all"``, ``"none"``, ``"sample:N"``, a number of rows N, or None (the default)."""
        if isinstance(value, KeepPaths):
            return value
        if value is None:
            return cls()
        if isinstance(value, int) and value >= 0:
            return cls(value)
        if value == "all":
            return cls(every=True)
        if value == "none":
            return cls(0)
        match = re.fullmatch(r"sample:([0-9]+)", value) if isinstance(value, str) else None
        if match is None:
            raise SettingsError(f"keep_paths = {value!r}: expected all, none or sample:N")
        return cls(int(match.group(1)))

    def rows(self, n_paths: int) -> int:
        """The number of rows kept of a run of ``n_paths`` paths (path ids 0 .. rows - 1)."""
        if self.every:
            return n_paths
        if self.count is None:
            return n_paths if n_paths <= KEEP_ALL_UP_TO else DEFAULT_SAMPLE
        return min(self.count, n_paths)

    @staticmethod
    def option(kept: int, n_paths: int) -> str:
        """The ``--keep-paths`` value that keeps ``kept`` of ``n_paths`` rows (to reproduce or resume a run)."""
        return "all" if kept == n_paths else "none" if kept == 0 else f"sample:{kept}"

    def __str__(self) -> str:
        if self.every or self.count is None:
            return "all" if self.every else "default"
        return "none" if self.count == 0 else f"sample:{self.count}"
