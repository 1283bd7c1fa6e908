import copy

import numpy as np
import pytest

from simulator.config import DEFAULT_CONFIG, read_raw, validate

BASE_RAW = read_raw(DEFAULT_CONFIG)


@pytest.fixture
def base_raw():
    """The base config as a plain dict, to modify in a test."""
    return copy.deepcopy(BASE_RAW)


def quiet_world(raw: dict) -> dict:
    """No randomness at all: every parameter fixed at its median, no volatility, no events or funding."""
    cfg = validate(raw)
    for key, dist in cfg.parameters().items():
        set_key(raw, key, dist.quantile(0.5))
    for seg in raw["revenue"]:
        raw["revenue"][seg]["sigma"] = 0.0
    raw["competition"]["intensity"] = 0.0
    raw["compute"].update(price_sigma=0.0, usage_sigma=0.0, supply_shock_intensity=0.0)
    raw["funding"]["scheduled"] = {}
    raw["funding"]["contingent"]["max_raises"] = 0
    raw["funding"]["credit"]["limit"] = 0.0
    raw["parameter_correlation"] = {}
    return raw


def set_key(raw: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for k in parents:
        node = node[k]
    node[last] = value


def assert_tables_equal(a, b):
    """Equal pyarrow tables, column by column, with a useful message."""
    assert a.column_names == b.column_names
    for name in a.column_names:
        assert a[name].equals(b[name]), f"column {name} differs"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
