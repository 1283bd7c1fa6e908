"""Fuzzing the command line with mutated configs (issue 35): whatever the numbers of the packaged base config are
turned into, ``simulator run`` either succeeds with finite outputs or exits 1 with one line, never a traceback.

Each example takes the base config (``read_raw``) and changes one to three things: a number scaled, negated, set
to 0, to a huge or tiny value, to inf or NaN, or a key left out (a setting, a distribution's field, a whole
table). The years of the simulation are left alone: their bounds belong to the config's loading code.
"""

import copy
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.config import DEFAULT_CONFIG, _toml_section, read_raw

BASE = read_raw(DEFAULT_CONFIG)
N_PATHS = 200
FIXED = {("simulation", "start_year"), ("simulation", "end_year")}


def _walk(node, path=()):
    """(path, value) of every entry below ``node``: table keys and list indices."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*path, key), value
        yield from _walk(value, (*path, key))


NUMBERS = [p for p, v in _walk(BASE) if isinstance(v, (int, float)) and not isinstance(v, bool) and p not in FIXED]
KEYS = [p for p, v in _walk(BASE) if isinstance(p[-1], str) and p not in FIXED]

MUTATIONS = {
    "times 10": lambda x: x * 10,
    "times 1000": lambda x: x * 1000,
    "divided by 10": lambda x: x / 10,
    "negated": lambda x: -x,
    "zero": lambda x: 0,
    "huge": lambda x: 1e300,
    "minus huge": lambda x: -1e300,
    "tiny": lambda x: 1e-300,
    "large": lambda x: 1e6,
    "integer overflow": lambda x: 2**64,
    "inf": lambda x: math.inf,
    "nan": lambda x: math.nan,
    "plus one": lambda x: x + 1,
}


def mutate(raw: dict, path: tuple, how: str) -> None:
    *parents, last = path
    node = raw
    for key in parents:
        node = node[key]
    if how == "drop":
        if isinstance(node, dict):
            node.pop(last, None)
        return
    if isinstance(node[last], (int, float)) and not isinstance(node[last], bool):
        node[last] = MUTATIONS[how](node[last])


def _resolvable(raw: dict, path: tuple) -> bool:
    node = raw
    for key in path:
        if (isinstance(node, dict) and key in node
                or isinstance(node, list) and isinstance(key, int) and key < len(node)):
            node = node[key]
        else:
            return False
    return True


# Mild changes more often than wild ones, so that about half the examples run the model rather than stop at
# validation.
MILD = ["times 10", "divided by 10", "negated", "zero", "plus one"]
mutations = st.lists(st.one_of(st.tuples(st.sampled_from(NUMBERS), st.sampled_from(MILD)),
                               st.tuples(st.sampled_from(NUMBERS), st.sampled_from(sorted(MUTATIONS))),
                               st.tuples(st.sampled_from(KEYS), st.just("drop"))), min_size=1, max_size=3)


def finite_except_undefined_margins(folder: Path) -> None:
    """Every float of the tables finite, but gross margins defined on too few paths (summary.UNDEFINED_VAR)."""
    summary = pd.read_parquet(folder / "summary.parquet")
    by_year = pd.read_parquet(folder / "by_year.parquet")
    by_step = pd.read_parquet(folder / "by_step.parquet")
    undefined = {m.removesuffix("_n_undefined") for m, v in zip(summary["metric"], summary["value"])
                 if m.endswith("_n_undefined") and v == N_PATHS}
    allowed = summary["metric"].map(lambda m: m.rsplit("_", 1)[0] in undefined).to_numpy()
    margin = (by_year["variable"] == "gross_margin").to_numpy()
    for frame, ok in ((summary, allowed), (by_year, margin & (by_year["n_undefined"] > N_PATHS - 2).to_numpy()),
                      (by_step, (by_step["variable"] == "gross_margin").to_numpy()
                       & (by_step["paths"] < 2).to_numpy())):
        values = frame.select_dtypes("float").to_numpy()
        assert np.isfinite(values[~ok]).all(), frame[~ok & ~np.isfinite(values).all(axis=1)].head()
    paths = pd.read_parquet(folder / "paths")
    numbers = paths.select_dtypes("number").drop(  # breakeven_year is null where FCF never turns positive
        columns=[c for c in paths if c.startswith("gross_margin_") or c == "breakeven_year"])
    assert np.isfinite(numbers.to_numpy(dtype=float)).all()


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(changes=mutations)
def test_a_mutated_config_runs_with_finite_outputs_or_gets_one_line(changes):
    raw = copy.deepcopy(BASE)
    for path, how in changes:
        if _resolvable(raw, path):
            mutate(raw, path, how)
    with tempfile.TemporaryDirectory() as tmp:
        config, out = Path(tmp) / "fuzz.toml", Path(tmp) / "out"
        config.write_text(_toml_section(raw, []))
        result = CliRunner().invoke(main, ["run", str(config), "-n", str(N_PATHS), "-q", "--out", str(out)])
        assert result.exception is None or isinstance(result.exception, SystemExit), (changes, result.exception)
        assert "Traceback" not in result.output
        if result.exit_code == 0:
            finite_except_undefined_margins(out)
        else:
            assert result.exit_code == 1, (changes, result.output)
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), (changes, result.output)
            assert not (out / "manifest.json").exists()
