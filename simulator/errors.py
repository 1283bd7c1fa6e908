"""The simulator's errors: every problem phrased for the user derives from :class:`SimulatorError`.

The command line prints a ``SimulatorError`` as one line (exit status 1); any other exception is a bug
and keeps its traceback. The subclasses that are also ``ValueError`` stay so for the Python API's callers.
The config's pydantic validators raise plain ``ValueError`` (pydantic's convention), which
:func:`simulator.config.validate` reports as a ``ConfigError``. This module imports nothing of the package,
so that every module can import it.
"""


class SimulatorError(Exception):
    """A problem of the user's input, settings or files, with a message that says what to change."""


class InvariantError(SimulatorError, RuntimeError):
    """A path or a table broke an accounting identity or holds a NaN it may not: a bug, reported with what to
    replay."""


class SettingsError(SimulatorError, ValueError):
    """A bad setting of a run or command: a path count, seed, thread count, --keep-paths, a location, a
    bracket or target of ``solve``, a cluster's settings."""
