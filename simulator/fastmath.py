"""Fast math for lane loops: exp, log, log1p and (e^d - 1) / d without calls or branches, so that a loop over lanes
compiles to SIMD (libm's functions do not vectorise); min and max as selects; polynomials in fused multiply-adds."""

from __future__ import annotations

import math

import numpy as np

from .intrinsics import bits_as_float, float_as_bits, fma, opaque
from .jit import jit


@jit(forceinline=True)
def fmax(a, b):
    """Python's max(a, b) as a select (numba's built-in max made lane loops up to 3x slower; so did ``and``,
    where ``&`` of the two comparisons is a select)."""
    return b if b > a else a


@jit(forceinline=True)
def fmin(a, b):
    """Python's min(a, b) as a select (see ``fmax``)."""
    return b if b < a else a



@jit(forceinline=True)
def horner(x, coefficients):
    """The polynomial with ``coefficients`` (a tuple, highest power first) at x: Horner's rule in fused
    multiply-adds, whose chain of dependent operations is half as long as multiplies and adds; the
    coefficients ``opaque``, so that a loop keeps them at hand."""
    p = opaque(coefficients[0])
    for j in range(1, len(coefficients)):
        p = fma(p, x, opaque(coefficients[j]))
    return p


def _series(terms):
    """Coefficients 1 / k! for k in ``terms``, highest power first (for ``horner``)."""
    return tuple(1.0 / math.factorial(k) for k in sorted(terms, reverse=True))


_EXP_SERIES = _series(range(12))            # e^r to r^11
# (e^h - 1) / h to h^11 at h = d / 4, as a polynomial in d: the coefficient of h^j over 4^j (exact: a power of 2)
_RAMP_SERIES = tuple(c * 0.25 ** j for j, c in zip(range(11, -1, -1), _series(range(1, 13))))
_TAYLOR_SERIES = _series(range(8))          # e^w to w^7
_ATANH_SERIES = tuple(1.0 / k for k in range(19, 0, -2))  # atanh(s) / s in s^2, to s^18

_LN2_HI, _LN2_LO = 0.6931471803691238, 1.9082149292705877e-10  # ln 2 in two parts (Cody-Waite)
_ROUND = 6755399441055744.0  # 1.5 * 2**52: (x + _ROUND) - _ROUND rounds x to an integer


@jit(forceinline=True)
def exp_lanes(x):
    """exp(x) without calls or branches, so loops over lanes compile to SIMD (libm's exp does not
    vectorise here): x = k ln2 + r, |r| <= ln2 / 2, a degree-11 Taylor polynomial for e^r, and 2^k
    written into the exponent bits. Relative error < 2e-14; x is clamped to [-708, 709] (so
    underflow gives ~1e-308, not 0) and beyond 709 the result is inf, as libm's."""
    xc = fmin(fmax(x, -708.0), 709.0)
    k = fma(xc, 1.4426950408889634, _ROUND) - _ROUND
    r = fma(-k, _LN2_LO, fma(-k, _LN2_HI, xc))
    scaled = horner(r, _EXP_SERIES) * bits_as_float((np.int64(k) + 1023) << 52)
    return scaled if x <= 709.0 else math.inf


_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000
_TINY = 2.2250738585072014e-308  # the smallest normal float64


@jit(forceinline=True)
def log_lanes(x):
    """ln x without calls or branches, so loops over lanes compile to SIMD (libm's log does not
    vectorise here): x = 2^k m with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m - 1) / (m + 1),
    |s| < 0.172, by its series to s^19 (remainder < 3e-17 relative). Relative error < 1e-15; ln 0 is -inf,
    ln inf inf, and a negative or NaN x gives NaN, as libm's."""
    sub = x < _TINY  # subnormals are scaled into the normal range first
    xs = x * 18014398509481984.0 if sub else x  # 2**54
    bits = float_as_bits(xs)
    k = ((bits >> 52) & 0x7FF) - (1077 if sub else 1023)
    m = bits_as_float((bits & _MANTISSA) | _ONE_BITS)  # in [1, 2)
    high = m > 1.4142135623730951
    m = 0.5 * m if high else m
    kf = float(k + 1 if high else k)
    s = (m - 1.0) / (m + 1.0)
    series = 2.0 * s * horner(s * s, _ATANH_SERIES)
    r = fma(kf, _LN2_HI, fma(kf, _LN2_LO, series))
    if x > 0.0 and x < math.inf:  # compiled to selects: both sides are computed anyway
        return r
    return -math.inf if x == 0.0 else (x if x > 0.0 else math.nan)


@jit(forceinline=True)
def log1p_lanes(x):
    """ln(1 + x) for x > -1 without calls, so loops over lanes compile to SIMD: log_lanes(u), u = 1 + x,
    corrected for the rounding of u to first order, (x - (u - 1)) / u, which keeps tiny x exact."""
    u = 1.0 + x
    return log_lanes(u) + (x - (u - 1.0)) / u


RAMP_RANGE = 2.0  # ramp_lanes is accurate for |d| below this


@jit(forceinline=True)
def ramp_lanes(d):
    """(e^d - 1) / d, the average of exp over a ramp from 0 to d, for |d| < RAMP_RANGE, without calls,
    branches or a division: the Taylor series of (e^h - 1) / h at h = d / 4 to h^11, then twice
    f(2h) = f(h) (1 + h f(h) / 2). Relative error < 1e-15 for |d| < 1 and < 6e-14 up to RAMP_RANGE (against
    mpmath); a series to h^14, accurate to 1e-15 up to 2, costs 3 more operations a lane."""
    f = horner(d, _RAMP_SERIES)  # the series in h = d / 4, its powers of 1/4 in the coefficients
    eighth = 0.125 * d  # h / 2 = d / 8
    f *= fma(eighth, f, 1.0)
    return f * fma(eighth + eighth, f, 1.0)  # an add, not a second product: the FMA units are the busier



SMALL_RANGE = 0.25  # exp_taylor is accurate for |w| below this


@jit(forceinline=True)
def exp_taylor(w):
    """exp(w) by its Taylor series to w^7: relative error < 7e-10 for |w| < SMALL_RANGE."""
    return horner(w, _TAYLOR_SERIES)


@jit(forceinline=True)
def exp_small(w):
    """exp(w): ``exp_taylor`` for |w| < SMALL_RANGE, ``exp_lanes`` otherwise. Used for the bridge factor,
    whose argument is a few hundredths (its standard deviation 0.02-0.05 in the default config)."""
    return exp_taylor(w) if abs(w) < SMALL_RANGE else exp_lanes(w)

