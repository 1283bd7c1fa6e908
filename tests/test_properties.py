"""Property-based tests (hypothesis): random valid configs, TOML round trips, any chunking."""

import copy
import datetime as dt
import tomllib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.config import validate
from simulator.engine import simulate
from simulator.summary import QUANTILES, by_year_frame, qname, summary_frame

from conftest import BASE_RAW

finite = dict(allow_nan=False, allow_infinity=False)


@st.composite
def configs(draw):
    """The base config with its key model settings redrawn over wide, valid ranges."""
    raw = copy.deepcopy(BASE_RAW)
    raw["simulation"]["steps_per_year"] = draw(st.sampled_from([1, 4, 12]))
    for seg in raw["revenue"].values():
        seg["sigma"] = draw(st.floats(0, 0.8, **finite))
        seg["growth_long_run"] = draw(st.floats(-0.5, 1.0, **finite))
        seg["competition_exposure"] = draw(st.floats(0, 1, **finite))
    raw["competition"]["intensity"] = draw(st.floats(0, 3, **finite))
    raw["compute"]["price_sigma"] = draw(st.floats(0, 0.5, **finite))
    raw["compute"]["supply_shock_intensity"] = draw(st.floats(0, 3, **finite))
    raw["compute"]["supply_shock_size"] = draw(st.floats(-0.5, 2, **finite))
    if draw(st.booleans()):
        day = draw(st.dates(dt.date(2025, 6, 1), dt.date(2031, 6, 1)))
        raw["compute"]["price_shocks"] = {"shock": {"date": day, "size": draw(st.floats(-0.9, 3, **finite))}}
    raw["funding"]["min_cash"] = draw(st.floats(-50, 150, **finite))
    raw["funding"]["contingent"]["max_raises"] = draw(st.integers(0, 5))
    raw["funding"]["credit"]["limit"] = draw(st.floats(0, 50, **finite))
    raw["training"]["runway_floor"] = draw(st.floats(0, 3, **finite))
    raw["training"]["cut_factor"] = draw(st.floats(0.05, 1, **finite))
    raw["market"]["persistence"] = draw(st.floats(0, 0.99, **finite))
    return validate(raw)


slow = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@slow
@given(cfg=configs(), seed=st.integers(0, 2**63 - 1))
def test_random_valid_configs_run_and_keep_the_invariants(cfg, seed):
    sim = simulate(cfg, 300, seed)  # raises InvariantError on a broken identity or a NaN
    summary = summary_frame(cfg, 300, sim.counts, sim.samples)
    values = summary[["value", "stderr", "ci_low", "ci_high"]].to_numpy()
    assert np.isfinite(values).all()
    assert (summary["ci_low"] <= summary["value"] + 1e-12).all()
    assert (summary["value"] <= summary["ci_high"] + 1e-12).all()
    p = summary[summary["metric"].str.startswith("p_")]
    assert ((p["value"] >= 0) & (p["value"] <= 1)).all()
    by_year = by_year_frame(cfg, sim.samples)
    quantiles = by_year[[qname(q) for q in QUANTILES]].to_numpy()
    assert (np.diff(quantiles, axis=1) >= 0).all()


@slow
@given(cfg=configs())
def test_config_to_toml_and_back_is_the_same_config(cfg):
    again = validate(tomllib.loads(cfg.to_toml()))
    assert again.digest() == cfg.digest()
    assert again == cfg


@settings(max_examples=15, deadline=None)
@given(chunk=st.integers(1, 2500), threads=st.sampled_from([1, 2]))
def test_any_chunk_size_gives_the_same_results(chunk, threads):
    cfg = validate(BASE_RAW)
    expected = _reference_run(cfg)
    got = simulate(cfg, 2000, 9, chunk_size=chunk, threads=threads)
    for name in ("theta", "annual", "scalars"):
        assert np.array_equal(getattr(expected, name), getattr(got, name))


_cache = {}


def _reference_run(cfg):
    if "run" not in _cache:
        _cache["run"] = simulate(cfg, 2000, 9)
    return _cache["run"]
