"""Parameter distributions: config schema and their quantile tables.

The kernel draws correlated normal scores ``z`` (the Gaussian copula) and turns each into its
parameter's value ``x = F^-1(Phi(z))``, with z clamped to [Z_MIN, Z_MAX]. A normal or lognormal
(untruncated) has that in closed form, ``mu + sigma z`` or its exp (``closed_form``); every other
parameter reaches the kernel as a table of its quantile function on a uniform grid of scores, which
the kernel interpolates linearly. Tabulating in ``z`` rather than in ``u = Phi(z)`` keeps the
function smooth and bounded in the tails, and needs no special functions inside numba.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal, Union

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator
from scipy import special

Z_MIN, Z_MAX, Z_POINTS = -8.0, 8.0, 4097
Z_GRID = np.linspace(Z_MIN, Z_MAX, Z_POINTS)
Z_90 = 1.6448536269514722  # Phi^-1(0.95): a 90% interval is mu +/- Z_90 * sd


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lower: float | None = Field(None, description="optional truncation bound")
    upper: float | None = Field(None, description="optional truncation bound")
    if TYPE_CHECKING:
        dist: str  # each kind's tag (a Literal field of its own)

    @model_validator(mode="after")
    def _check_bounds(self):
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        return self

    # Each kind defines its quantile function (ppf), its upper-tail form isf(u) = ppf(1 - u) computed
    # without rounding 1 - u, its cdf and its support.
    def ppf(self, u):
        raise NotImplementedError

    def isf(self, u):
        return self.ppf(1.0 - u)

    def cdf(self, x):
        raise NotImplementedError

    def natural_support(self) -> tuple[float, float]:
        raise NotImplementedError

    def support(self) -> tuple[float, float]:
        """Smallest and largest value the (truncated) distribution can take."""
        lo, hi = self.natural_support()
        if self.lower is not None:
            lo = max(lo, self.lower)
        if self.upper is not None:
            hi = min(hi, self.upper)
        return float(lo), float(hi)

    def closed_form(self) -> tuple[bool, float, float] | None:
        """(log, loc, scale) where the value at normal score z is loc + scale z (its exp where ``log``);
        None where the kernel interpolates the table."""
        return None

    def quantile(self, q: float) -> float:
        """The ``q`` quantile as the kernel draws it (from its closed form or its table)."""
        z = float(special.ndtri(q))
        form = self.closed_form()
        if form is None:
            return float(np.interp(z, Z_GRID, self.table()))
        log, loc, scale = form
        x = loc + scale * min(max(z, Z_MIN), Z_MAX)
        return math.exp(x) if log else x

    def table(self) -> np.ndarray:
        """Quantile function on ``Z_GRID`` (float64, shape (Z_POINTS,)), read-only: computed once a process for
        each distinct distribution (see :func:`_cached_table`)."""
        return _cached_table(self)

    def _table(self) -> np.ndarray:
        with np.errstate(all="ignore"):
            if self.lower is None and self.upper is None:
                # Two-sided evaluation keeps full precision in the upper tail, where Phi(z) rounds to 1;
                # each side only where it is used (an inverse beta costs ~7 ms a table).
                low = Z_GRID < 0
                out = np.empty(Z_POINTS)
                out[low] = self.ppf(special.ndtr(Z_GRID[low]))
                out[~low] = self.isf(special.ndtr(-Z_GRID[~low]))
                return out
            f_lo = self.cdf(self.lower) if self.lower is not None else 0.0
            f_hi = self.cdf(self.upper) if self.upper is not None else 1.0
            if not f_hi > f_lo:
                raise ValueError("the truncation bounds leave no probability mass")
            x = self.ppf(f_lo + special.ndtr(Z_GRID) * (f_hi - f_lo))
        lo, hi = self.support()
        return np.clip(x, lo, hi).astype(np.float64)


def _key(d: _Dist) -> tuple:
    """What a distribution's table depends on: its kind and every field, a float by its repr (so -0.0 and 0.0,
    equal as numbers, stay apart)."""
    return (type(d), *((k, repr(v)) for k, v in d.__dict__.items()))


# Tables by ``_key``, and (all finite, smallest, largest) of each.
_TABLES: dict[tuple, np.ndarray] = {}
_RANGES: dict[tuple, tuple[bool, float, float]] = {}


def _cached_table(d: _Dist) -> np.ndarray:
    """``d``'s table, computed once a process for each distinct distribution. Validating a config computes the
    table of every parameter (to check what the kernel can draw), and ``simulator validate`` validates each
    judgment's two alternative configs too: each differs from the config in one key, so its other tables are
    found here (an inverse beta costs ~5 ms a table). Read-only, as it is shared."""
    key = _key(d)
    table = _TABLES.get(key)
    if table is None:
        if len(_TABLES) >= 4096:  # a bound on the memory (33 KiB a table) of a long-lived process
            _TABLES.clear()
            _RANGES.clear()
        table = d._table()
        table.setflags(write=False)
        _TABLES[key] = table
    return table


def _table_range(d: _Dist) -> tuple[bool, float, float]:
    """Whether ``d``'s table is all finite, and its smallest and largest value (once for each distinct one)."""
    key = _key(d)
    found = _RANGES.get(key)
    if found is None:
        table = _cached_table(d)
        found = _RANGES[key] = (bool(np.all(np.isfinite(table))), float(table.min()), float(table.max()))
    return found


class Fixed(_Dist):
    dist: Literal["fixed"] = "fixed"
    value: float

    def support(self):
        return self.value, self.value

    def _table(self):
        return np.full(Z_POINTS, self.value)


class Normal(_Dist):
    """Normal by ``mean``/``sd`` or by its 90% interval ``p5``/``p95``."""

    dist: Literal["normal"]
    mean: float | None = None
    sd: float | None = Field(None, ge=0)
    p5: float | None = None
    p95: float | None = None

    @model_validator(mode="after")
    def _one_form(self):
        _check_one_form(self, ("mean", "sd"))
        return self

    def location_scale(self) -> tuple[float, float]:
        if self.p5 is not None and self.p95 is not None:  # _one_form: both percentiles, or mean and sd
            return (self.p5 + self.p95) / 2, (self.p95 - self.p5) / (2 * Z_90)
        assert self.mean is not None and self.sd is not None
        return self.mean, self.sd

    def closed_form(self):
        return (False, *self.location_scale()) if self.lower is None and self.upper is None else None

    def ppf(self, u):
        m, s = self.location_scale()
        return m + s * special.ndtri(u)

    def isf(self, u):
        m, s = self.location_scale()
        return m - s * special.ndtri(u)

    def cdf(self, x):
        m, s = self.location_scale()
        return special.ndtr((x - m) / s) if s > 0 else float(x >= m)

    def natural_support(self):
        m, s = self.location_scale()
        return (-math.inf, math.inf) if s > 0 else (m, m)


class Lognormal(_Dist):
    """Lognormal by ``mu``/``sigma`` of the log, or by its 90% interval ``p5``/``p95``."""

    dist: Literal["lognormal"]
    mu: float | None = None
    sigma: float | None = Field(None, ge=0)
    p5: float | None = Field(None, gt=0)
    p95: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_form(self):
        _check_one_form(self, ("mu", "sigma"))
        return self

    def location_scale(self) -> tuple[float, float]:
        if self.p5 is not None and self.p95 is not None:  # _one_form: both percentiles, or mu and sigma
            a, b = math.log(self.p5), math.log(self.p95)
            return (a + b) / 2, (b - a) / (2 * Z_90)
        assert self.mu is not None and self.sigma is not None
        return self.mu, self.sigma

    def closed_form(self):
        return (True, *self.location_scale()) if self.lower is None and self.upper is None else None

    def ppf(self, u):
        m, s = self.location_scale()
        return np.exp(m + s * special.ndtri(u))

    def isf(self, u):
        m, s = self.location_scale()
        return np.exp(m - s * special.ndtri(u))

    def cdf(self, x):
        m, s = self.location_scale()
        if x <= 0:
            return 0.0
        return special.ndtr((math.log(x) - m) / s) if s > 0 else float(math.log(x) >= m)

    def natural_support(self):
        m, s = self.location_scale()
        return (0.0, math.inf) if s > 0 else (math.exp(m), math.exp(m))


class Uniform(_Dist):
    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        _check_order(self, "low", "high")
        return self

    def ppf(self, u):
        return self.low + u * (self.high - self.low)

    def isf(self, u):
        return self.high - u * (self.high - self.low)

    def cdf(self, x):
        return min(1.0, max(0.0, (x - self.low) / (self.high - self.low)))

    def natural_support(self):
        return self.low, self.high


class Triangular(_Dist):
    dist: Literal["triangular"]
    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        _check_order(self, "low", "mode", "high")
        return self

    def ppf(self, u):
        u = np.asarray(u, dtype=float)
        width, left, right = self.high - self.low, self.mode - self.low, self.high - self.mode
        split = left / width
        return np.where(u <= split, self.low + np.sqrt(u * width * left),
                        self.high - np.sqrt((1.0 - u) * width * right))

    def isf(self, u):
        u = np.asarray(u, dtype=float)
        width, left, right = self.high - self.low, self.mode - self.low, self.high - self.mode
        split = right / width
        return np.where(u <= split, self.high - np.sqrt(u * width * right),
                        self.low + np.sqrt((1.0 - u) * width * left))

    def cdf(self, x):
        width, left, right = self.high - self.low, self.mode - self.low, self.high - self.mode
        if x <= self.low:
            return 0.0
        if x >= self.high:
            return 1.0
        if x <= self.mode:
            return (x - self.low) ** 2 / (width * left)
        return 1.0 - (self.high - x) ** 2 / (width * right)

    def natural_support(self):
        return self.low, self.high


class Pert(_Dist):
    """Beta-PERT: ``low``/``mode``/``high`` and the shape weight ``lamb`` (4 is classic PERT)."""

    dist: Literal["pert"]
    low: float
    mode: float
    high: float
    lamb: float = Field(4.0, gt=0)

    @model_validator(mode="after")
    def _order(self):
        _check_order(self, "low", "mode", "high")
        return self

    def as_beta(self) -> "Beta":
        width = self.high - self.low
        return Beta(dist="beta", a=1 + self.lamb * (self.mode - self.low) / width,
                    b=1 + self.lamb * (self.high - self.mode) / width, low=self.low, high=self.high)

    def ppf(self, u):
        return self.as_beta().ppf(u)

    def isf(self, u):
        return self.as_beta().isf(u)

    def cdf(self, x):
        return self.as_beta().cdf(x)

    def natural_support(self):
        return self.low, self.high


class Beta(_Dist):
    """Beta(``a``, ``b``) scaled to [``low``, ``high``] (default [0, 1])."""

    dist: Literal["beta"]
    a: float = Field(gt=0)
    b: float = Field(gt=0)
    low: float = 0.0
    high: float = 1.0

    @model_validator(mode="after")
    def _order(self):
        _check_order(self, "low", "high")
        return self

    def ppf(self, u):
        return self.low + (self.high - self.low) * special.betaincinv(self.a, self.b, u)

    def isf(self, u):
        return self.low + (self.high - self.low) * special.betainccinv(self.a, self.b, u)

    def cdf(self, x):
        return float(special.betainc(self.a, self.b, min(1.0, max(0.0, (x - self.low) / (self.high - self.low)))))

    def natural_support(self):
        return self.low, self.high


def _check_one_form(d, natural: tuple[str, str]) -> None:
    nat = [getattr(d, k) is not None for k in natural]
    pct = [d.p5 is not None, d.p95 is not None]
    if all(nat) and not any(pct):
        return
    if all(pct) and not any(nat):
        if not d.p5 < d.p95:
            raise ValueError(f"p5 ({d.p5}) must be below p95 ({d.p95})")
        return
    raise ValueError(f"give either {natural[0]} and {natural[1]}, or p5 and p95")


def _check_order(d, *names: str) -> None:
    values = [getattr(d, n) for n in names]
    if not all(a <= b for a, b in zip(values, values[1:])) or values[0] == values[-1]:
        shown = ", ".join(f"{n}={v}" for n, v in zip(names, values))
        raise ValueError(f"expected {' <= '.join(names)} with {names[0]} < {names[-1]}, got {shown}")


def _tag(value) -> str | None:
    if isinstance(value, dict):
        return value.get("dist")
    return getattr(value, "dist", None)


def _number_to_fixed(value):
    """A bare number is a fixed distribution."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Fixed(value=value)
    return value


DIST_KINDS = ("fixed", "normal", "lognormal", "uniform", "triangular", "pert", "beta")

Distribution = Annotated[
    Union[
        Annotated[Fixed, Tag("fixed")],
        Annotated[Normal, Tag("normal")],
        Annotated[Lognormal, Tag("lognormal")],
        Annotated[Uniform, Tag("uniform")],
        Annotated[Triangular, Tag("triangular")],
        Annotated[Pert, Tag("pert")],
        Annotated[Beta, Tag("beta")],
    ],
    Discriminator(_tag, custom_error_type="distribution",
                  custom_error_message=f"expected a number or a table with dist = one of {', '.join(DIST_KINDS)}"),
]


# The largest magnitude of any parameter. No amount ($B) or rate of the model comes near it, and larger ones
# (min_cash = 1e308) overflow the summaries' sums of squares into infinities and NaN.
LARGEST = 1e9


def param(lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = False,
          why: str = ""):
    """A parameter type: a number or a distribution whose support lies in [lo, hi] (``why``: the reason for a bound
    that is not plain from the quantity, added to the message), and within +/- LARGEST."""

    def check(d: _Dist) -> _Dist:
        finite, s_lo, s_hi = _table_range(d)  # what the kernel can actually draw (normal scores within +/-8)
        if not finite:
            raise ValueError("the distribution has non-finite values")
        reason = f" ({why})" if why else ""
        if s_lo < lo or (lo_open and s_lo == lo) or s_hi > hi or (hi_open and s_hi == hi):
            left, right = ("(" if lo_open else "["), (")" if hi_open else "]")
            allowed = f"{left}{lo:g}, {hi:g}{right}"
            if d.dist == "fixed":
                raise ValueError(f"expected a value in {allowed}{reason}")
            raise ValueError(f"draws range over [{s_lo:g}, {s_hi:g}], expected values in {allowed}{reason} "
                             "(narrow it or add lower/upper truncation bounds)")
        if max(-s_lo, s_hi) > LARGEST:
            what = "a value" if d.dist == "fixed" else f"draws (over [{s_lo:g}, {s_hi:g}])"
            raise ValueError(f"expected {what} within +/-{LARGEST:g}: no amount ($B) or rate of the model is near "
                             "that, and beyond it the summaries overflow")
        return d

    return Annotated[Distribution, BeforeValidator(_number_to_fixed), AfterValidator(check)]


Real = param()
NonNegative = param(0.0)
Positive = param(0.0, lo_open=True)
Fraction = param(0.0, 1.0)
