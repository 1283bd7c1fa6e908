"""The run configuration: TOML files, ``extends`` chains, ``--set`` overrides and the schema.

Section and key names follow docs/model.md, so ``funding.min_cash`` here is ``min_cash`` of §6.
Every uncertain quantity is a *parameter*: a number, or a distribution table
(see :mod:`simulator.distributions`).  Unknown keys are errors.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
import re
import stat
import tomllib
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .distributions import Distribution, Fraction, NonNegative, Positive, Real, param
from .errors import SimulatorError

PACKAGED_CONFIGS = Path(__file__).parent / "configs"
DEFAULT_CONFIG = PACKAGED_CONFIGS / "base.toml"


class ConfigError(SimulatorError, ValueError):
    """A configuration problem, phrased for the user (key, value, what was expected)."""


def _by_name(table: dict) -> dict:
    """Named entries (segments, raises, shocks) in name order: the kernel's layout and the order
    random numbers are drawn in follow it, so the order in a file must not matter."""
    return dict(sorted(table.items()))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Schedule = dict[str, Annotated[float, Field(allow_inf_nan=False)]]
"""A value per calendar year, e.g. ``{ 2026 = 0.2, 2027 = 0.18 }``."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

# Dates are turned into years from the start with calendar arithmetic (the year after a date's year must
# exist); anything outside these centuries is a typo in a model of the 2020s.
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)


def _in_range(d: dt.date) -> dt.date:
    if not FIRST_DATE <= d <= LAST_DATE:
        raise ValueError(f"expected a date between {FIRST_DATE} and {LAST_DATE}")
    return d


Date = Annotated[dt.date, AfterValidator(_in_range)]

# A config's name becomes a folder name (results/<name>/, a scenario's OUT/<name>/): a plain identifier, so that
# it can never climb out of its folder, name the folder itself, or carry markup into a report.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
NAME_RULE = "letters, digits, '_', '-' and '.' (not first), at most 100 characters"
MAX_EVENTS = 365.0  # shocks a year (competition, supply): see Competition.intensity
EVENTS_WHY = "at most one a day on average: the model draws a step's shocks as one Poisson count"

# Parameter types with bounds of their own, named: a call is no annotation to a type checker. Built at run time
# by param(), they are Any to it, as Real and the other parameter types of simulator.distributions are.
EventRate: Any = param(0.0, MAX_EVENTS, why=EVENTS_WHY)  # shocks a year: see Competition.intensity
BelowOne: Any = param(0.0, 1.0, hi_open=True)            # [0, 1)
Margin: Any = param(-math.inf, 1.0, hi_open=True)        # (-inf, 1)
JumpSize: Any = param(-1.0, lo_open=True)                # (-1, inf): a relative jump
CutFactor: Any = param(0.0, 1.0, lo_open=True)           # (0, 1]


def _date_to_years(d: dt.date, start_year: int) -> float:
    """Time in years from 1 January of ``start_year`` to ``d``."""
    year_start = dt.date(d.year, 1, 1)
    days = (dt.date(d.year + 1, 1, 1) - year_start).days
    return d.year - start_year + (d - year_start).days / days


class Simulation(_Section):
    start_year: int = Field(2026, ge=FIRST_DATE.year, le=LAST_DATE.year - 1,
                            description="the simulation starts on 1 January of this year")
    end_year: int = Field(2030, ge=FIRST_DATE.year, le=LAST_DATE.year - 1, description="last simulated calendar year")
    steps_per_year: Literal[1, 4, 12] = 4
    seed: int = Field(20260101, ge=0, lt=2**63, description="default seed when --seed is not given")
    antithetic: bool = Field(False, description="pair path 2k+1 with path 2k's mirrored random numbers")
    as_of: Date | None = Field(None, description="the config uses only what was published by this date "
                                                 "(its sources' dates; default: 1 January of start_year)")

    @model_validator(mode="after")
    def _years(self):
        if self.end_year < self.start_year:
            raise ValueError(f"end_year ({self.end_year}) is before start_year ({self.start_year})")
        return self


class Segment(_Section):
    """A revenue segment (docs/model.md)."""

    run_rate: Positive = Field(description="annualised run-rate at launch, $B/yr")
    launch: Date | None = Field(None, description="launch date; revenue is 0 before it")
    growth_initial: Real = Field(description="g_s0, log growth per year at the start")
    growth_long_run: Real = Field(description="g_s_inf, long-run log growth per year")
    half_life: Positive = Field(description="years for growth to close half the gap to its long-run level")
    sigma: NonNegative = Field(description="volatility of the log run-rate per sqrt(year)")
    # validate_default: a default reaches the kernel only as a parameter (a Fixed distribution), as a value in
    # the file would; the bare 0.0 was no parameter, and a run without the key failed (issue 35).
    competition_exposure: Fraction = Field(0.0, validate_default=True,
                                           description="e_s: share of a competition shock this segment takes")
    ceiling: Positive | None = Field(None, description="the segment's market, $B/yr of run-rate: growth is "
                                                       "logistic toward it (model v2); none: no ceiling")

    @model_validator(mode="after")
    def _ceiling_above_start(self):
        """A ceiling at or below the starting run-rate would make the segment shrink from its launch on: refused.
        Fixed values are compared as they are; a drawn one by its median (a path may still draw a ceiling under
        its run-rate: the ceiling is soft and such a path declines toward it)."""
        if self.ceiling is None:
            return self
        ceiling, start = self.ceiling.quantile(0.5), self.run_rate.quantile(0.5)
        if ceiling <= start:
            shown = f"{ceiling:g}" if self.ceiling.dist == "fixed" else f"a {self.ceiling.dist} with median {ceiling:g}"
            raise ValueError(f"ceiling = {shown}: expected a ceiling above the starting run_rate ({start:g})")
        return self


class Competition(_Section):
    # Bounded (not left to the kernel): each step's count is drawn by inversion, exact only far below ~700 events
    # a step (exp(-mean) underflows there and the count stops at 1000); 1e9 a year gave overflowing outputs.
    intensity: EventRate = Field(description="lambda_comp, expected shocks per year")
    severity: BelowOne = Field(description="H, fraction of run-rate lost in a shock")


class PriceShock(_Section):
    """A dated, persistent jump of the compute price index (a supply shock known in advance)."""

    date: Date = Field(description="when the jump happens")
    size: FiniteFloat = Field(gt=-1, description="relative jump: 0.5 raises prices by half from that date on")


NonNegativeAmount = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositivePrice = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Contract(_Section):
    """A compute contract (model v2): ``amount`` $B a year of contracted capacity by calendar year (years
    past the horizon count in ``committed_after_end``; a year not listed is 0), ``unit_price`` the price of one
    unit under it relative to start-2026 spot (a number, or one value for each year with an amount), and the
    share of ``amount`` paid whether used or not."""

    amount: dict[str, NonNegativeAmount] = Field(description="$B a year of contracted capacity, by calendar year")
    unit_price: PositivePrice | dict[str, PositivePrice] = Field(
        1.0, description="price of a unit under the contract, relative to start-2026 spot")
    take_or_pay: FiniteFloat = Field(1.0, ge=0, le=1, description="share of amount paid whether used or not")

    @field_validator("amount", "unit_price")
    @classmethod
    def _years(cls, v):
        if isinstance(v, dict):
            bad = [k for k in v if not (k.isdigit() and len(k) == 4)]
            if bad:
                raise ValueError(f"expected calendar years as keys, got {bad[0]!r}")
            return dict(sorted(v.items()))
        return v

    def price(self, year: str) -> float:
        return self.unit_price if not isinstance(self.unit_price, dict) else self.unit_price[year]


class Compute(_Section):
    gross_margin_0: Margin = Field(description="gross margin at the start")
    price_drift: Real = Field(description="mu_P, log drift per year of the compute price index")
    price_sigma: NonNegative = Field(description="sigma_P")
    supply_shock_intensity: EventRate = Field(  # bounded: see Competition.intensity
        description="lambda_P, supply shocks per year")
    supply_shock_size: JumpSize = Field(description="S, relative price jump in a supply shock")
    usage_drift: Real = Field(description="mu_U, log drift per year of compute used per $ of revenue")
    usage_sigma: NonNegative = Field(description="sigma_U")
    gpu_hour_price: FiniteFloat = Field(2.35, gt=0, description="$ per H100-hour at the start (reports only)")
    price_shocks: dict[str, PriceShock] = Field(default_factory=dict, description="dated price jumps")
    # model v2. Parameters with defaults, as Segment.competition_exposure (validate_default).
    supply_shock_half_life: Positive = Field(1.5, validate_default=True,
                                             description="h_J, years for a supply shock's price deviation to halve")
    resale: Fraction = Field(0.0, validate_default=True,
                             description="share of idle contracted capacity resold, at the spot price")
    contracts: dict[str, Contract] = Field(default_factory=dict, description="compute contracts by name")

    _order = field_validator("price_shocks", "contracts")(classmethod(lambda cls, v: _by_name(v)))


class Costs(_Section):
    partner_share: Schedule = Field(description="revenue share paid to partners, by year")
    opex_base: NonNegative = Field(description="O_0, fixed cash opex at the start, $B/yr")
    opex_growth: Real = Field(description="g_O, log growth per year of fixed opex")
    opex_revenue_ratio: Fraction = Field(description="o_r, variable opex per $ of revenue")
    cash_interest: NonNegative = Field(description="r_cash, interest per year on positive cash")


class Training(_Section):
    plan: Schedule = Field(description="training and research compute plan by year, units a year (TC_plan: $B "
                                       "at start-2026 spot prices)")
    revenue_elasticity: Real = Field(description="beta, elasticity of flexible compute to revenue vs plan")
    runway_floor: NonNegative = Field(description="years of runway under which flexible compute is cut")
    cut_factor: CutFactor = Field(description="multiplier on flexible compute when cut")


class ScheduledRaise(_Section):
    amount: NonNegative = Field(description="total amount, $B")
    date: Date | None = Field(None, description="closing date (or give window)")
    window: tuple[Date, Date] | None = Field(None, description="closing date drawn uniformly in [start, end]")
    probability: FiniteFloat = Field(1.0, ge=0, le=1, description="probability of closing")
    tranches: int = Field(1, ge=1, le=10_000, description="number of equal payments")  # le: an int64 in the kernel
    tranche_period: FiniteFloat = Field(0.25, gt=0, description="years between payments")
    revenue_condition: FiniteFloat = Field(0.0, ge=0, description="gamma: probability x min(1, (Rev/plan)^gamma)")

    @model_validator(mode="after")
    def _timing(self):
        if (self.date is None) == (self.window is None):
            raise ValueError("give exactly one of date or window")
        if self.window is not None and self.window[0] > self.window[1]:
            raise ValueError(f"window start {self.window[0]} is after its end {self.window[1]}")
        return self


class Contingent(_Section):
    lookahead: NonNegative = Field(description="raise when cash < min_cash + lookahead x annual burn")
    intercept: Real = Field(description="a, logistic intercept of the yearly success probability")
    revenue_slope: Real = Field(description="b, on ln(Rev_run / Rev_plan)")
    market_slope: Real = Field(description="c, on market appetite M")
    size_multiple: NonNegative = Field(description="raise size as a multiple of the revenue run-rate")
    size_cap: NonNegative = Field(description="largest raise, $B")
    max_raises: int = Field(ge=0, description="at most this many contingent raises")
    cooldown: NonNegative = Field(description="years between two raises")
    # model v2: a raise attempted under the floor (cash after the step's scheduled funding, before the credit line).
    distress_factor: NonNegative = Field(0.5, validate_default=True,
                                         description="success intensity x this when cash < min_cash")
    distress_size: NonNegative = Field(0.5, validate_default=True, description="raise size x this when cash < min_cash")
    distress_limit: Real = Field(0.0, validate_default=True,
                                 description="no contingent raise closes while cash < -distress_limit, $B")


class Credit(_Section):
    limit: NonNegative = Field(description="revolving credit line, $B")
    rate: NonNegative = Field(0.07, validate_default=True, description="interest per year on the drawn amount")


class Funding(_Section):
    initial_cash: Real = Field(description="cash and securities at the start, $B")
    min_cash: Real = Field(10.0, validate_default=True, description="shortfall floor, $B")  # see competition_exposure
    initial_burn: FiniteFloat = Field(ge=0, description="burn of the year before the start, seeds the trailing burn")
    scheduled: dict[str, ScheduledRaise] = Field(default_factory=dict)
    contingent: Contingent
    credit: Credit

    _order = field_validator("scheduled")(classmethod(lambda cls, v: _by_name(v)))


class Market(_Section):
    persistence: BelowOne = Field(description="phi, yearly autocorrelation of market appetite")


class Correlation(_Section):
    """A correlation matrix over named variables (rows and columns in the order of ``names``)."""

    names: list[str] = Field(default_factory=list)
    matrix: list[list[FiniteFloat]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _matrix(self):
        n = len(self.names)
        if len(set(self.names)) != n:
            raise ValueError(f"names repeat an entry: {self.names}")
        if len(self.matrix) != n or any(len(row) != n for row in self.matrix):
            raise ValueError(f"matrix must be {n}x{n} to match names")
        m = np.array(self.matrix, dtype=float).reshape(n, n)
        bad = [(self.names[i], self.names[j]) for i in range(n) for j in range(n) if m[i, j] != m[j, i]]
        if bad:
            raise ValueError(f"matrix is not symmetric: entry {bad[0][0]} / {bad[0][1]}")
        if n and not np.all(np.diag(m) == 1):
            raise ValueError("matrix must have 1 on its diagonal")
        if n and np.any(np.abs(m) > 1):
            raise ValueError("entries must lie in [-1, 1]")
        if n and np.linalg.eigvalsh(m).min() <= 1e-10:
            raise ValueError(f"matrix is not positive definite ({_worst_entries(m, self.names)})")
        return self

    def full(self, all_names: list[str], ignored: AbstractSet[str] = frozenset()) -> np.ndarray:
        """The matrix over ``all_names``, with the unnamed ones independent. Names in ``ignored``
        (parameters fixed by a scenario or ``--set``: nothing to correlate) are dropped."""
        unknown = [x for x in self.names if x not in all_names and x not in ignored]
        if unknown:
            raise ConfigError(f"unknown name {unknown[0]!r}; expected one of: {', '.join(all_names)}")
        keep = [i for i, x in enumerate(self.names) if x in all_names]
        idx = [all_names.index(self.names[i]) for i in keep]
        out = np.eye(len(all_names))
        if keep:
            out[np.ix_(idx, idx)] = np.array(self.matrix, dtype=float)[np.ix_(keep, keep)]
        return out


def _worst_entries(m: np.ndarray, names: list[str]) -> str:
    """Name the pair whose removal helps most: the off-diagonal entry most involved in the smallest eigenvector."""
    w, v = np.linalg.eigh(m)
    e = v[:, 0]
    score = np.abs(np.outer(e, e) * m)
    np.fill_diagonal(score, 0)
    i, j = np.unravel_index(np.argmax(score), score.shape)
    return f"smallest eigenvalue {w[0]:.3g}; look at {names[i]} / {names[j]} = {m[i, j]:g}"


class Plan(_Section):
    """The company's stated plan, for comparisons and the flexible-compute rule."""

    revenue: Schedule = Field(description="planned annual revenue by year, $B")
    fcf: Schedule = Field(description="planned free cash flow by year, $B")
    compute_total: FiniteFloat = Field(600.0, gt=0, description="planned total compute spend over the horizon, $B")


class Judgment(_Section):
    """A fixed choice of the config tested like a drawn parameter (model v2): ``key`` (dotted) at a ``low``
    and a ``high`` alternative value, or, for a schedule or a drawn parameter, scaled by ``scale`` = [low,
    high]; a correlation entry names its ``pair`` in ``key``'s matrix (``parameter_correlation`` or
    ``shocks``). ``why`` says in a line why the config's choice is not a fact."""

    key: str = Field(description="dotted key of the choice")
    low: FiniteFloat | None = Field(None, description="low alternative value")
    high: FiniteFloat | None = Field(None, description="high alternative value")
    scale: tuple[FiniteFloat, FiniteFloat] | None = Field(None, description="[low, high] factors on a schedule "
                                                                            "or a distribution")
    pair: tuple[str, str] | None = Field(None, description="the two names of a correlation entry")
    why: str = Field(min_length=1, description="one line: why this is a judgment")

    @model_validator(mode="after")
    def _alternatives(self):
        values = self.low is not None and self.high is not None
        if values == (self.scale is not None) or (self.low is None) != (self.high is None):
            raise ValueError("give either low and high (values) or scale = [low, high] (factors)")
        if self.scale is not None and not all(f > 0 for f in self.scale):
            raise ValueError(f"scale = {list(self.scale)}: expected positive factors")
        if (self.pair is not None) != (self.key in ("parameter_correlation", "shocks")):
            raise ValueError("a correlation entry is key = \"parameter_correlation\" or \"shocks\" with a pair; "
                             "pair belongs to those keys only")
        return self


class Config(_Section):
    name: str = Field("run", description="scenario name, used for the default output folder")
    description: str = ""
    simulation: Simulation = Simulation()
    revenue: dict[str, Segment]
    competition: Competition
    compute: Compute
    costs: Costs
    training: Training
    funding: Funding
    market: Market
    shocks: Correlation = Correlation()
    parameter_correlation: Correlation = Correlation()
    plan: Plan
    judgments: dict[str, Judgment] = Field(default_factory=dict, description="fixed choices to test (§D)")

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not NAME_PATTERN.fullmatch(v):
            raise ValueError(f"expected a plain name: {NAME_RULE}")
        return v

    @field_validator("revenue")
    @classmethod
    def _segments(cls, v):
        if not v:
            raise ValueError("at least one revenue segment is needed")
        return _by_name(v)

    @model_validator(mode="after")
    def _schedules(self):
        years = [str(y) for y in self.years]
        for where, sched in [("costs.partner_share", self.costs.partner_share),
                             ("training.plan", self.training.plan),
                             ("plan.revenue", self.plan.revenue), ("plan.fcf", self.plan.fcf)]:
            missing = [y for y in years if y not in sched]
            extra = [y for y in sched if y not in years]
            if missing or extra:
                raise ConfigError(f"{where}: expected one value for each year {years[0]}..{years[-1]}, "
                                  + (f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(extra)}"))
        for where, sched, lo, hi in [("costs.partner_share", self.costs.partner_share, 0, 1),
                                     ("training.plan", self.training.plan, 0, math.inf),
                                     ("plan.revenue", self.plan.revenue, 0, math.inf)]:
            for y, v in sched.items():
                if not lo <= v <= hi or (where == "plan.revenue" and v == 0):
                    raise ConfigError(f"{where}.{y} = {v}: expected a value in "
                                      f"{'(' if where == 'plan.revenue' else '['}{lo}, {hi}]")
        for name, contract in self.compute.contracts.items():
            early = [y for y in contract.amount if int(y) < self.simulation.start_year]
            if early:
                raise ConfigError(f"compute.contracts.{name}.amount.{early[0]}: a year before the start "
                                  f"({self.simulation.start_year}); give amounts from then on")
            if isinstance(contract.unit_price, dict):
                missing = [y for y, a in contract.amount.items() if a > 0 and y not in contract.unit_price]
                if missing:
                    raise ConfigError(f"compute.contracts.{name}.unit_price: no value for {missing[0]}, a year "
                                      "with an amount; give a number or one value for each such year")
        self.shocks.full(self.shock_channels)
        params = self.parameters()
        self.parameter_correlation.full([k for k, d in params.items() if d.dist != "fixed"],
                                        {k for k, d in params.items() if d.dist == "fixed"})
        return self

    @property
    def years(self) -> list[int]:
        return list(range(self.simulation.start_year, self.simulation.end_year + 1))

    @property
    def shock_channels(self) -> list[str]:
        """Names of the per-step shock channels, in kernel order (docs/model.md)."""
        return [f"revenue.{s}" for s in self.revenue] + ["compute_price", "usage", "market"]

    def years_from_start(self, d: dt.date) -> float:
        return _date_to_years(d, self.simulation.start_year)

    def parameters(self) -> dict[str, Distribution]:
        """Every distribution-valued setting, by its dotted key."""
        out = {}

        def walk(model: BaseModel, prefix: str):
            for key in type(model).model_fields:
                value = getattr(model, key)
                path = f"{prefix}{key}"
                if hasattr(value, "table"):
                    out[path] = value
                elif isinstance(value, BaseModel):
                    walk(value, path + ".")
                elif isinstance(value, dict):
                    for k, v in value.items():
                        if isinstance(v, BaseModel):
                            walk(v, f"{path}.{k}.")

        walk(self, "")
        return out

    def to_toml(self) -> str:
        """The resolved config as a TOML file (``extends`` merged in): it loads back to the same config."""
        return _toml_section(self.model_dump(exclude_none=True), [])

    def resolved(self) -> dict:
        """The fully resolved config as JSON-compatible data (dates as ISO strings)."""
        return self.model_dump(mode="json", exclude_none=True)

    def digest(self) -> str:
        """SHA-256 of the resolved config: two runs with equal digests simulate the same model."""
        text = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- writing TOML


def _is_inline(value: dict) -> bool:
    """Distributions, schedules (year keys) and empty tables are written inline."""
    return not value or "dist" in value or all(str(k).isdigit() for k in value)


def _toml_key(key) -> str:
    key = str(key)
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict) and value.get("dist") == "fixed" and set(value) == {"dist", "value"}:
        return _toml_value(value["value"])  # a fixed parameter is written as its number
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_section(table: dict, path: list[str]) -> str:
    subtables = {k: v for k, v in table.items() if isinstance(v, dict) and not _is_inline(v)}
    lines = [f"[{'.'.join(_toml_key(p) for p in path)}]"] if path else []
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if k not in subtables]
    text = "\n".join(lines) + "\n"
    for k, v in subtables.items():
        text += "\n" + _toml_section(v, [*path, k])
    return text


# ---------------------------------------------------------------- loading


MAX_CONFIG_BYTES = 1 << 20  # a config is a page of text; more is a wrong file (or /dev/zero)
MAX_EXTENDS_DEPTH = 32  # scenario on scenario on base is 3; a chain of 32 is a mistake or an attack


def read_toml(path: Path, what: str = "config") -> dict:
    """A TOML file's table; a ``.json`` file (a run's resolved ``config.json``) is read as JSON. Only a regular
    file of at most ``MAX_CONFIG_BYTES`` is read (a FIFO would block, a device never end). ``what`` names the
    kind of file in the messages (a config, an actuals file)."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{path}: is a folder, expected a TOML file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: not a regular file, expected a TOML file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {info.st_size:,} bytes, expected a {what} of at most {MAX_CONFIG_BYTES:,}")
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:  # it grew after the stat
            raise ConfigError(f"{path}: more than {MAX_CONFIG_BYTES:,} bytes, expected a {what} of at most that")
        text = data.decode("utf-8")
        return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read the {what} file (permission denied)") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start} is {data[e.start]:#04x}); "
                          f"save the {what} as UTF-8") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'TOML'}: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what} file ({e.strerror or e})") from None


_PACKAGED_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")  # a packaged config's name: no dot, no slash


def packaged(name: str) -> Path | None:
    """The packaged config ``name`` names (``base``: ``simulator/configs/base.toml``), or None where ``name`` is
    not a plain name (it has a suffix or a folder) or no packaged config bears it."""
    if not _PACKAGED_NAME.fullmatch(name):
        return None
    path = PACKAGED_CONFIGS / f"{name}.toml"
    return path if path.is_file() else None


def config_file(given: str | Path, folder: Path | None = None) -> Path:
    """The file a config argument or an ``extends`` value names, relative to ``folder`` (default: the working
    folder): that file where it exists, else the packaged config of that name (:func:`packaged`), else the path
    as given (whose reading then says it is missing)."""
    path = (folder or Path()) / given
    if not path.exists():
        return packaged(str(given)) or path
    return path


def command_config(given: str | Path | None) -> str:
    """How a command line that reproduces a run names its config, with no path of this machine in it: a
    packaged config by its name (``base``), a relative path as the user typed it, an absolute path inside the
    working folder relative to it; else the run's own ``config.json`` (read in the run's folder)."""
    if given is None:
        return DEFAULT_CONFIG.stem
    path = Path(given)
    if not path.is_absolute():
        return str(path)  # as typed: a relative path, or a packaged config's name
    if path.suffix == ".toml" and path.parent.resolve() == PACKAGED_CONFIGS.resolve() and packaged(path.stem):
        return path.stem
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return "config.json"


def _merge(base: dict, override: dict) -> dict:
    """Deep merge: tables merge key by key, anything else in ``override`` replaces."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and v.get("dist") is None:
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_raw(path: Path) -> dict:
    """A config file's table with its ``extends`` chain merged in (base first)."""
    chain: list[Path] = []
    tables = []
    path = Path(path).resolve()
    while True:
        if path in chain:
            names = " -> ".join(p.name for p in (*chain, path))
            raise ConfigError(f"{path}: extends forms a cycle ({names})")
        if len(chain) == MAX_EXTENDS_DEPTH:
            raise ConfigError(f"{chain[0]}: extends chain deeper than {MAX_EXTENDS_DEPTH} files "
                              f"(at {path.name}); expected a short chain such as scenario -> base")
        chain.append(path)
        raw = read_toml(path)
        parent = raw.pop("extends", None)
        tables.append(raw)
        if parent is None:
            break
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: extends = {parent!r}: expected a file name (string)")
        parent_path = config_file(parent, path.parent)  # a packaged config's name ("base") from any folder
        if not parent_path.exists():
            names = ", ".join(p.stem for p in sorted(PACKAGED_CONFIGS.glob("*.toml")))
            also = f", nor a packaged config of that name ({names})" if _PACKAGED_NAME.fullmatch(parent) else ""
            raise ConfigError(f"{path}: extends = {parent!r}: no such file {parent_path}{also}")
        path = parent_path.resolve()
    merged = tables.pop()
    while tables:
        merged = _merge(merged, tables.pop())
    return merged


def parse_override(text: str) -> tuple[list[str], object]:
    """``"funding.min_cash=15"`` -> (["funding", "min_cash"], 15). Values are TOML; bare words are strings."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted KEY, e.g. funding.min_cash=15")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.split("."), parsed


def apply_override(raw: dict, keys: list[str], value) -> None:
    """Set ``raw[k1][k2]... = value``; the key must exist in ``raw`` or be a schema field."""
    node = raw
    for i, k in enumerate(keys[:-1]):
        child = node.get(k)
        if child is None and k in _known_fields(keys[:i + 1]):
            child = node[k] = {}
        if not isinstance(child, dict):
            where = ".".join(keys[:i + 1])
            raise ConfigError(f"--set {'.'.join(keys)}: {where} is not a table in this config"
                              + ("" if child is None else f" (it is {child!r})"))
        node = child
    last = keys[-1]
    if last not in node and last not in _known_fields(keys):
        raise ConfigError(f"--set {'.'.join(keys)}: no such key in the config "
                          f"(keys here: {', '.join(sorted(node)) or 'none'})")
    node[last] = value


def _model_at(keys: list[str]) -> type[BaseModel] | None:
    """The schema model of the table at ``keys`` (entries of named tables such as segments are skipped)."""
    model: type[BaseModel] | None = Config
    expect_name = False
    for k in keys:
        if expect_name:  # k names a segment or a scheduled raise
            expect_name = False
            continue
        field = model.model_fields.get(k) if model else None
        ann = getattr(field, "annotation", None)
        args = getattr(ann, "__args__", ())
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        elif args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel):
            model, expect_name = args[-1], True
        else:
            return None
    return None if expect_name else model


def _known_fields(keys: list[str]) -> set[str]:
    """Field names the schema allows in the table ``keys[:-1]`` (for keys absent from the file)."""
    model = _model_at(keys[:-1])
    return set(model.model_fields) if model else set()


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load, merge and validate a config.

    Parameters
    ----------
    path : str or Path, optional
        A TOML file, or the name of a packaged config (``"bear"``) where no such file exists; the packaged
        ``base.toml`` when omitted. An ``extends`` value may name a packaged config the same way.
    overrides : list of str
        ``"dotted.key=value"`` strings applied after ``extends`` is resolved.

    Raises
    ------
    ConfigError
        With a one-line message naming the key, the value and what was expected.
    """
    path = config_file(path) if path is not None else DEFAULT_CONFIG
    raw = read_raw(path)
    if "name" not in raw and not NAME_PATTERN.fullmatch(path.stem):
        raise ConfigError(f"{path}: the file name {path.stem!r} is not a plain name ({NAME_RULE}); "
                          'give the config one with name = "..."')
    raw.setdefault("name", path.stem)
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(raw, keys, value)
    return validate(raw, source=str(path))


# v1 keys that model v2 replaced: a config that still gives one is told what replaced it.
REPLACED_KEYS = {
    ("training", "committed"): "training.committed was replaced by [compute.contracts.<name>] (amount by year, "
                               "unit_price, take_or_pay); see docs/model.md",
    ("training", "deferrable"): "training.deferrable was replaced by take_or_pay of [compute.contracts.<name>] "
                                "(the share not deferrable); see docs/model.md",
}


def validate(raw: dict, source: str = "config") -> Config:
    for (section, key), why in REPLACED_KEYS.items():
        if isinstance(raw.get(section), dict) and key in raw[section]:
            raise ConfigError(f"{source}: {why}")
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{source}: {_describe(e)}") from None
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _describe(e: ValidationError) -> str:
    """One line for the first error: key, value, what was expected."""
    err = e.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    # Drop the union-member tags pydantic inserts (e.g. "normal", "function-after[...]").
    kinds = {"fixed", "normal", "lognormal", "uniform", "triangular", "pert", "beta"}
    named = ("revenue", "scheduled", "judgments", "contracts")  # tables whose entries may bear any name, a kind's too
    loc = [p for i, p in enumerate(loc)
           if not (p.startswith("function-") or (p in kinds and i > 0 and loc[i - 1] not in named))]
    key = ".".join(loc)
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if not key:  # a check across sections: its message names the key
        return msg
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key"+ _allowed_hint(loc)
    if err["type"] == "missing":
        return f"{key}: missing required key"
    if isinstance(value, dict):
        return f"{key}: {msg}"
    shown = value.isoformat() if isinstance(value, dt.date) else repr(value)
    return f"{key} = {shown}: {msg}"


def _allowed_hint(loc: list[str]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return " (not a setting here)"
    return f" (expected one of: {', '.join(model.model_fields)})"
