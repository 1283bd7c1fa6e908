"""Calibration: the plan scenario reproduces the company's published trajectory, and every
packaged config runs."""

import math

import numpy as np
import pytest

import simulator
from simulator.config import PACKAGED_CONFIGS

# Published figures (docs/model.md §7), written out here rather than read from a config.
PUBLISHED_BURN = {2026: 17.0, 2027: 35.0, 2028: 45.0}  # earlier internal plan (Sep 2025), The Information
BURN_TOLERANCE = 0.25                                 # docs/model.md: "within about 25%"
PUBLISHED_REVENUE_2030 = 280.0                        # "> 280" (Feb 2026 reset), CNBC / Reuters
REVENUE_TOLERANCE = 0.10
PUBLISHED_COMPUTE_TOTAL = 600.0                       # "total compute spend through 2030 ~600", CNBC
COMPUTE_TOLERANCE = 0.25


@pytest.fixture(scope="module")
def plan_run():
    # Every parameter is pinned, so all paths are the same; a few hundred show that they are.
    return simulator.run(simulator.load_config(PACKAGED_CONFIGS / "plan.toml"), 300)


def test_plan_is_deterministic(plan_run):
    paths = plan_run.paths
    for col in ["revenue_2030", "fcf_2026", "fcf_2030", "compute_spend_total"]:
        assert np.ptp(paths[col]) < 1e-9 * max(1.0, abs(paths[col].iloc[0])), col


@pytest.mark.parametrize("year", sorted(PUBLISHED_BURN))
def test_plan_reproduces_the_published_burn(plan_run, year):
    burn = -plan_run.metric(f"fcf_{year}_q50").value
    target = PUBLISHED_BURN[year]
    assert abs(burn - target) <= BURN_TOLERANCE * target, f"burn {year}: {burn:.1f} vs published {target}"


def test_plan_reproduces_revenue_and_positive_cash_flow_in_2030(plan_run):
    revenue = plan_run.metric("revenue_2030_q50").value
    assert abs(revenue - PUBLISHED_REVENUE_2030) <= REVENUE_TOLERANCE * PUBLISHED_REVENUE_2030, revenue
    assert plan_run.metric("fcf_2030_q50").value >= 0
    assert plan_run.metric("p_fcf_positive_2030").value == 1.0


def test_plan_spends_about_600_on_compute(plan_run):
    total = plan_run.metric("compute_spend_total_q50").value
    assert abs(total - PUBLISHED_COMPUTE_TOTAL) <= COMPUTE_TOLERANCE * PUBLISHED_COMPUTE_TOTAL, total


@pytest.mark.parametrize("path", sorted(PACKAGED_CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_packaged_config_runs(path):
    cfg = simulator.load_config(path)
    assert cfg.description, f"{path.name}: give the scenario a description"
    results = simulator.run(cfg, 500)
    values = results.summary[["value", "stderr", "ci_low", "ci_high"]].to_numpy()
    assert not np.isnan(values).any(), results.summary[np.isnan(values).any(axis=1)]["metric"].tolist()
    assert not results.by_year.drop(columns=["year", "variable"]).isna().any().any()
    assert math.isfinite(results.paths["cash_end"].sum())
