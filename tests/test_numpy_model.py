"""The plain-NumPy baseline (benchmarks/numpy_model.py) against the numba kernel.

The two use different random number generators, so they agree path by path only where nothing
is random, and otherwise in distribution:

* statistical: ~40,000 paths each with pinned seeds; every compared mean (an indicator's mean for
  a probability) must agree within 4 combined standard errors,
  |mean_numpy - mean_kernel| <= 4 * sqrt(var_numpy / n_numpy + var_kernel / n_kernel),
  with the sample variances (for a probability p, p (1 - p)).  With ~30 comparisons per scenario a
  correct implementation fails one by chance with probability ~0.2%; a model difference shows up
  as many standard errors, not a few;
* deterministic: worlds without randomness (``quiet_world``, and variants of it that raise money
  on fixed dates, draw and repay the credit line, cut training and raise contingently with
  certainty) must agree to 1e-9 relative on every annual and scalar output.
"""

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator import kernel
from simulator.config import validate
from simulator.engine import simulate
from simulator.model import build_inputs

from conftest import quiet_world

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from numpy_model import simulate_numpy  # noqa: E402

N_PATHS = 40_000
SIGMAS = 4.0

SCENARIOS = {
    "base": [],
    # As in test_kernel: contingent raises, the credit line, shortfalls and the runway cut are common.
    "stressed": [("funding", "min_cash", 70.0), ("training", "runway_floor", 3.0)],
    # Compute (model v2): idle capacity resold, frequent supply shocks that fade fast.
    "compute": [("compute", "resale", 0.5), ("compute", "supply_shock_intensity", 1.5),
                ("compute", "supply_shock_half_life", 0.5)],
}


def assert_same_mean(a, b, what):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    diff = abs(a.mean() - b.mean())
    assert diff <= SIGMAS * se, f"{what}: numpy {a.mean():.6g} vs kernel {b.mean():.6g}, {diff / se:.1f} SE apart"


@pytest.mark.parametrize("name", SCENARIOS)
def test_numpy_agrees_with_kernel_in_distribution(base_raw, name):
    for section, key, value in SCENARIOS[name]:
        base_raw[section][key] = value
    cfg = validate(base_raw)
    theta, annual, scalars = simulate_numpy(build_inputs(cfg), N_PATHS, seed=2024)
    sim = simulate(cfg, N_PATHS, seed=7)
    assert theta.shape == sim.theta.shape
    assert annual.shape == sim.annual.shape
    assert scalars.shape == sim.scalars.shape

    for var in ("revenue", "fcf", "cash", "compute_spend", "compute_units", "contract_spend", "spot_spend",
                "idle_compute", "compute_resale", "utilisation"):
        v = kernel.ANNUAL_VARS.index(var)
        for i, year in enumerate(cfg.years):
            assert_same_mean(annual[:, v, i], sim.annual[:, v, i], f"mean {var} {year}")
    assert_same_mean(scalars[:, kernel.S_FIRST_SHORTFALL] >= 0, sim.scalars[:, kernel.S_FIRST_SHORTFALL] >= 0,
                     "P(shortfall)")
    assert_same_mean(annual[:, kernel.A_FCF, -1] > 0, sim.annual[:, kernel.A_FCF, -1] > 0,
                     f"P(fcf {cfg.years[-1]} > 0)")
    # The funding machinery, which the figures above see only through cash.
    for s in (kernel.S_RAISED_SCHEDULED, kernel.S_RAISED_CONTINGENT, kernel.S_N_RAISES, kernel.S_CREDIT_MAX,
              kernel.S_FUNDING_GAP):
        assert_same_mean(scalars[:, s], sim.scalars[:, s], f"mean {kernel.SCALAR_VARS[s]}")
    if name == "stressed":  # guard: the branches above were taken
        assert (sim.scalars[:, kernel.S_N_RAISES] > 0).mean() > 0.05
        assert (sim.scalars[:, kernel.S_CREDIT_MAX] > 0).mean() > 0.05


def funded(raw):
    """Quiet, plus a raise on a fixed date in tranches, a credit line and a floor that it is needed for."""
    raw["funding"]["scheduled"] = {"round": {"amount": 24.0, "date": dt.date(2027, 5, 1), "probability": 1.0,
                                             "tranches": 3, "tranche_period": 0.3}}
    raw["funding"]["credit"]["limit"] = 6.0
    raw["funding"]["min_cash"] = 30.0
    raw["training"]["runway_floor"] = 2.0


def raising(raw):
    """Quiet, plus contingent raises that succeed with probability 1 to rounding: tried only under the floor
    (lookahead 0), where the distress factor makes the intensity 1000 a year (logit 40: 1000 x 1.0; a step's
    chance 1 - e^-250 == 1.0), at full size and at any cash."""
    raw["funding"]["contingent"].update(max_raises=2, intercept=40.0, revenue_slope=0.0, market_slope=0.0,
                                        size_multiple=0.3, cooldown=0.75, lookahead=0.0, distress_factor=1000.0,
                                        distress_size=1.0, distress_limit=1e6)
    raw["funding"]["min_cash"] = 30.0


def reselling(raw):
    """Quiet, plus resale of idle capacity and a contract with a scalar unit price far above demand."""
    raw["compute"]["resale"] = 0.5
    raw["compute"]["contracts"]["spare"] = {"amount": {"2027": 80.0, "2029": 120.0}, "unit_price": 0.7,
                                            "take_or_pay": 0.6}


@pytest.mark.parametrize("variant", [None, funded, raising, reselling], ids=["quiet", "funded", "raising", "resale"])
def test_numpy_equals_kernel_without_randomness(base_raw, variant):
    raw = quiet_world(base_raw)
    if variant is not None:
        variant(raw)
    cfg = validate(raw)
    theta, annual, scalars = simulate_numpy(build_inputs(cfg), 3, seed=1)
    sim = simulate(cfg, 3, seed=1)
    assert theta.shape == sim.theta.shape == (3, 0)
    for v, var in enumerate(kernel.ANNUAL_VARS):
        np.testing.assert_allclose(annual[:, v], sim.annual[:, v], rtol=1e-9, atol=0, err_msg=var)
    for s, var in enumerate(kernel.SCALAR_VARS):
        np.testing.assert_allclose(scalars[:, s], sim.scalars[:, s], rtol=1e-9, atol=1e-9, err_msg=var)
    k = sim.scalars[0]
    if variant is funded:  # guard: the branches were taken
        assert k[kernel.S_RAISED_SCHEDULED] == 24.0 and k[kernel.S_CREDIT_MAX] > 0 and k[kernel.S_FIRST_SHORTFALL] >= 0
    if variant is raising:
        assert k[kernel.S_N_RAISES] == 2
    if variant is reselling:
        assert (sim.annual[0, kernel.A_RESALE] > 0).any() and (sim.annual[0, kernel.A_IDLE] > 0).any()

