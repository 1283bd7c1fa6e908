"""Interval estimates: known values and coverage over repeated seeds.

Coverage tests draw 400 samples with a known answer; a 95% interval should contain the truth
in 95% +/- 3 binomial standard errors (sqrt(0.95 * 0.05 / 400) = 1.1%) of them: [91.7%, 98.3%].
"""

import math

import pytest
from scipy import stats as sps

from simulator import stats
from simulator.samples import SortedSample

REPS = 400
LOW, HIGH = 0.95 - 3 * math.sqrt(0.95 * 0.05 / REPS), 0.95 + 3 * math.sqrt(0.95 * 0.05 / REPS)


def test_wilson_known_value():
    # Wilson 95% interval for 10 successes in 100 trials: [0.0552, 0.1744] (Newcombe 1998 style check).
    e = stats.wilson(0.1, 100)
    assert e.ci_low == pytest.approx(0.05523, abs=1e-4) and e.ci_high == pytest.approx(0.17437, abs=1e-4)
    assert stats.wilson(0.0, 50).ci_low == 0.0 and stats.wilson(1.0, 50).ci_high == 1.0


def coverage(estimate, truth, sampler, rng):
    hits = 0
    for _ in range(REPS):
        e = estimate(sampler(rng))
        hits += e.ci_low <= truth <= e.ci_high
    return hits / REPS


def test_probability_interval_coverage(rng):
    assert LOW <= coverage(lambda hits: stats.wilson(hits.mean(), hits.size), 0.03,
                           lambda r: r.random(2000) < 0.03, rng) <= HIGH


@pytest.mark.parametrize("q", [0.05, 0.5, 0.95])
def test_quantile_interval_coverage(rng, q):
    truth = sps.lognorm(1.0).ppf(q)
    cov = coverage(lambda x: stats.quantile(SortedSample(x), q), truth, lambda r: r.lognormal(0, 1, 2000), rng)
    assert LOW <= cov <= HIGH


def test_mean_interval_coverage(rng):
    assert LOW <= coverage(lambda x: stats.mean(SortedSample(x)), math.exp(0.5),
                           lambda r: r.lognormal(0, 1, 2000), rng) <= HIGH


def test_expected_shortfall_interval_coverage(rng):
    # ES of an exponential(1) beyond its 95% quantile: q + 1 = ln 20 + 1.
    cov = coverage(lambda x: stats.upper_expected_shortfall(SortedSample(x), 0.05), math.log(20) + 1,
                   lambda r: r.exponential(1.0, 10_000), rng)
    assert LOW <= cov <= HIGH


def test_cash_flow_at_risk_interval_coverage(rng):
    # For N(0, 1): E - Q5% = 1.6449.
    cov = coverage(lambda x: stats.mean_minus_quantile(SortedSample(x), 0.05), 1.6448536269514722,
                   lambda r: r.normal(0, 1, 5000), rng)
    assert LOW <= cov <= HIGH
