"""Monte Carlo estimates with their standard errors and 95% intervals.

Each function returns ``Estimate(value, stderr, ci_low, ci_high)``; the distributions come as a
sample object (``simulator.samples``: every value sorted, or a streamed histogram):

* probabilities: binomial standard error and the Wilson score interval;
* quantiles: the inverse empirical CDF, with a distribution-free interval from order statistics
  (the binomial ranks around ``n q``) and stderr = interval width / (2 x 1.96);
* means: the sample standard deviation over sqrt(n), normal interval;
* expected shortfall (mean of the worst tail): the asymptotic variance
  ``[Var(X | tail) + (1 - a)(ES - VaR)^2] / (n a)``;
* mean minus quantile (Cash-Flow-at-Risk): delta method, including their covariance.

Weighted paths (a run updated on reported figures) count as Kish's effective sample size
(``effective_paths``; ``samples.WeightedSample``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

Z95 = 1.959963984540054


class Estimate(NamedTuple):
    value: float
    stderr: float
    ci_low: float
    ci_high: float

    def shifted(self, offset: float, sign: float = 1.0) -> "Estimate":
        """The estimate of ``offset + sign * X``."""
        lo, hi = sorted((offset + sign * self.ci_low, offset + sign * self.ci_high))
        return Estimate(offset + sign * self.value, self.stderr, lo, hi)


def paired_probability(hits: int, both: int, n: int) -> Estimate:
    """P(event) from an antithetic run: ``both`` pairs (paths 2k, 2k+1) have the event twice.

    The pair average Y = (a + b) / 2 has sum of squares (hits + 2 both) / 4; Var(p) = Var(Y) / (n/2).
    The Wilson interval uses the effective sample size p(1-p) / Var(p).
    """
    p, m = hits / n, n // 2
    var = max(0.0, (hits + 2 * both) / 4 / m - p * p) / m
    if var == 0.0:
        return wilson(p, n)._replace(stderr=0.0)
    e = wilson(p, max(1, round(p * (1 - p) / var)))
    return e._replace(stderr=math.sqrt(var))


def _pair_se(influence: np.ndarray) -> float:
    """Standard error of a statistic whose influence values are ``influence`` (path order), when
    paths 2k and 2k+1 are an antithetic pair: the spread of the pair averages."""
    pairs = 0.5 * (influence[0::2] + influence[1::2])
    return float(np.std(pairs, ddof=1) / math.sqrt(pairs.size))


def _paired(sample) -> bool:
    return getattr(sample, "values", None) is not None


def wilson(p: float, n: int) -> Estimate:
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if p == 0 else max(0.0, centre - half)  # exact ends: no rounding residue at 0 or 1
    high = 1.0 if p == 1 else min(1.0, centre + half)
    return Estimate(p, math.sqrt(p * (1 - p) / n), low, high)


def quantile_ranks(n: int, q: float) -> tuple[int, int, int]:
    """0-based ranks of the point estimate and of the 95% interval's ends in a sorted sample."""
    point = min(n - 1, max(0, math.ceil(n * q) - 1))
    half = Z95 * math.sqrt(n * q * (1 - q))
    low = min(n - 1, max(0, math.floor(n * q - half) - 1))
    high = min(n - 1, max(0, math.ceil(n * q + half)))
    return point, low, high


def quantile(sample, q: float) -> Estimate:
    """The q-quantile (inverse empirical CDF) with its order-statistic 95% interval.

    For antithetic pairs the interval is scaled by the ratio of the paired to the independent
    standard error, from the influence function (q - 1[x <= Q]) / f(Q)."""
    point, low, high = quantile_ranks(sample.n, q)
    lo, hi = sample.value_at(low), sample.value_at(high)
    value, se = sample.value_at(point), (hi - lo) / (2 * Z95)
    if _paired(sample) and se > 0:
        inv_density = se * math.sqrt(sample.n) / math.sqrt(q * (1 - q))
        se_pairs = _pair_se((q - (sample.values <= value)) * inv_density)
        ratio = se_pairs / se
        lo, hi, se = value - ratio * (value - lo), value + ratio * (hi - value), se_pairs
    return Estimate(value, se, lo, hi)


def quantile_rank_error(sample, q: float) -> float:
    """Largest rank error of the values ``quantile`` reads (0 for an exact sample)."""
    return max(sample.rank_error(r) for r in quantile_ranks(sample.n, q))


def mean(sample) -> Estimate:
    n = sample.n
    m = sample.total / n
    var = max(0.0, (sample.total_sq - n * m * m) / (n - 1)) if n > 1 else math.nan
    se = _pair_se(sample.values - m) if _paired(sample) else math.sqrt(var / n)
    return Estimate(m, se, m - Z95 * se, m + Z95 * se)


def upper_expected_shortfall(sample, tail: float = 0.05) -> Estimate:
    """Mean of the largest ``tail`` share of the sample (e.g. the worst 5% of funding gaps)."""
    n = sample.n
    k = max(1, math.ceil(n * tail))
    es, tail_var = sample.top_moments(k)
    var_at_risk = sample.value_at(n - k)
    se = math.sqrt((tail_var + (1 - tail) * (es - var_at_risk) ** 2) / (n * tail))
    if _paired(sample):  # influence function of the upper-tail mean
        x = sample.values
        se = _pair_se(np.where(x > var_at_risk, x - var_at_risk, 0.0) / tail + var_at_risk - es)
    return Estimate(es, se, es - Z95 * se, es + Z95 * se)


def mean_minus_quantile(sample, q: float) -> Estimate:
    """E[X] - Q_q(X), with the delta-method variance Var(mean) + Var(quantile) - 2 Cov."""
    n = sample.n
    m = mean(sample)
    qe = quantile(sample, q)
    # 1 / density at the quantile, read off the order-statistic interval.
    inv_density = qe.stderr * math.sqrt(n) / math.sqrt(q * (1 - q))
    count_below, sum_below = sample.below(qe.value)
    cov = -(sum_below / n - m.value * count_below / n) * inv_density / n
    se = math.sqrt(max(m.stderr ** 2 + qe.stderr ** 2 - 2 * cov, 0.0))
    if _paired(sample):  # influence of the mean minus that of the quantile
        x = sample.values
        se = _pair_se((x - m.value) - (q - (x <= qe.value)) * inv_density)
    value = m.value - qe.value
    return Estimate(value, se, value - Z95 * se, value + Z95 * se)


def effective_paths(weights: np.ndarray) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2: how many unweighted paths weighted ones are worth for a
    standard error."""
    total = float(np.sum(weights))
    squares = float(np.sum(weights * weights))
    return total * total / squares if squares > 0 else 0.0


def effective_counts(weights: np.ndarray, flags: np.ndarray, names) -> tuple[dict[str, float], float]:
    """Weighted events as an unweighted run of the effective sample size would count them: per name (a row of
    ``flags``, paths in columns) its weighted share times the effective number of paths, and that number."""
    ess = effective_paths(weights)
    total = float(np.sum(weights))
    # A share can round to just above 1 (the two sums add in different orders): it is 1.
    return {name: ess * min(1.0, float(np.sum(weights * f)) / total) for name, f in zip(names, flags)}, ess


def with_error(value: float, error: float) -> str:
    """``value ± error`` with the digits the error allows: the error to one significant digit (two where that
    digit would be 1, so that 0.014 is not read as 0.01), the value rounded to the same place ("0.42 ± 0.03",
    "59.6 ± 0.7", "1230 ± 60"). Without a finite positive error, the value to 6 significant digits alone."""
    if not (math.isfinite(error) and error > 0 and math.isfinite(value)):
        return f"{value:.6g}"
    place = math.floor(math.log10(error))  # the error's leading digit is at 10^place
    if round(error / 10.0**place) == 10:  # 0.0096 rounds up to 0.01
        place += 1
    if round(error / 10.0**place) == 1:
        place -= 1
    digits = max(0, -place)
    value = round(value, -place) + 0.0  # + 0.0: no "-0.00"
    return f"{value:.{digits}f} ± {round(error, -place):.{digits}f}"
