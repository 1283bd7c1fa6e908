"""Config -> the plain arrays the kernel takes (the parameters of docs/model.md, per step and per year)."""

from __future__ import annotations

import datetime as dt
import math
from typing import NamedTuple

import numpy as np

from . import layout
from .config import Config, ConfigError, ScheduledRaise
from .distributions import Z_GRID, Distribution, Fixed


class ModelInputs(NamedTuple):
    """Everything ``kernel.simulate_block`` needs besides the seed, the path range and the outputs: one argument,
    a named tuple that numba types field by field (arrays, ints, floats, a bool), read by name in the kernel."""

    antithetic: bool          # path 2k+1 mirrors the random numbers of path 2k
    spy: int
    n_years: int
    tables: np.ndarray        # (n_params, Z_POINTS) quantile tables
    form: np.ndarray          # (n_params,) int64: layout.FORM_TABLE, FORM_AFFINE or FORM_EXP
    loc_scale: np.ndarray     # (n_params, 2) the closed form's loc and scale (0 for a table)
    drawn_slot: np.ndarray    # (n_params,) index among drawn parameters, -1 if fixed
    z_min: float
    z_step: float
    chol_param: np.ndarray    # (n_drawn, n_drawn) Cholesky factor of the copula correlation
    chol_first: np.ndarray    # (n_drawn,) int64: first non-zero column of each row of chol_param
    seg_launch: np.ndarray    # (n_seg,) launch time, years from start (<= 0: live at start)
    share: np.ndarray         # (n_years,) partner revenue share
    tc_plan: np.ndarray       # (n_years,) training compute plan, units a year
    plan_rate: np.ndarray     # (T + 1,) the plan's revenue run-rate at each step boundary
    price_level: np.ndarray   # (T,) step-average factor of dated price shocks on the compute price
    ev_start: np.ndarray      # (n_events,) window, years from start
    ev_end: np.ndarray
    ev_prob: np.ndarray
    ev_tranches: np.ndarray   # int64
    ev_period: np.ndarray
    ev_gamma: np.ndarray
    max_raises: int
    initial_burn: float
    chol_shock: np.ndarray    # (n_channels, n_channels)
    theta_params: np.ndarray  # (n_drawn,) int64: the parameter (kernel order) of each column of theta_out
    seg_capped: np.ndarray    # (n_seg,) bool: the segment has a ceiling (model v2)
    capacity: np.ndarray      # (n_years,) contracted capacity K, units a year: sum of amount / unit_price
    contract_amount: np.ndarray  # (n_years,) sum of the contracts' amounts, $B a year
    contract_top: np.ndarray  # (n_years,) sum of take_or_pay x amount, $B a year

    def keeping(self, columns: list[int]) -> ModelInputs:
        """These inputs with theta_out narrowed to the drawn parameters at ``columns``: for chunks whose rows
        are not kept, which need only what their checks read (all 25 drawn parameters of the default config
        cost the kernel ~25 ns a path to write)."""
        return self._replace(theta_params=self.theta_params[np.asarray(columns, dtype=np.int64)])


def parameter_order(config: Config) -> list[str]:
    """Dotted keys of every parameter in kernel order: globals, segments, scheduled raise amounts."""
    order = list(layout.GLOBAL_PARAMS)
    for s in config.revenue:
        order += [f"revenue.{s}.{f}" for f in layout.SEGMENT_PARAMS]
    order += [f"funding.scheduled.{e}.amount" for e in config.funding.scheduled]
    return order


def drawn_parameters(config: Config) -> list[str]:
    """The parameters that vary between paths, in kernel order (the columns of theta_out)."""
    params = config.parameters()
    return [k for k in parameter_order(config) if k in params and params[k].dist != "fixed"]


def kernel_parameters(config: Config) -> dict[str, Distribution]:
    """``config.parameters()`` and, for each segment without a ceiling, a placeholder ceiling of 0 (the kernel's
    layout has a ceiling for every segment; ``ModelInputs.seg_capped`` says which it reads)."""
    params = dict(config.parameters())
    for s, segment in config.revenue.items():
        if segment.ceiling is None:
            params[f"revenue.{s}.ceiling"] = Fixed(value=0.0)
    return params


def plan_run_rate(config: Config, times: np.ndarray) -> np.ndarray:
    """The plan as a run-rate: each year's revenue sits at mid-year, log-linear in between
    (and extrapolated with the first and last year's growth)."""
    years = np.array(config.years, dtype=float)
    mids = years - config.simulation.start_year + 0.5
    log_rev = np.log([config.plan.revenue[str(y)] for y in config.years])
    if len(years) == 1:
        return np.full_like(times, math.exp(log_rev[0]))
    slopes_lo = (log_rev[1] - log_rev[0]) / (mids[1] - mids[0])
    slopes_hi = (log_rev[-1] - log_rev[-2]) / (mids[-1] - mids[-2])
    out = np.interp(times, mids, log_rev)
    out = np.where(times < mids[0], log_rev[0] + slopes_lo * (times - mids[0]), out)
    out = np.where(times > mids[-1], log_rev[-1] + slopes_hi * (times - mids[-1]), out)
    return np.exp(out)


def price_level(config: Config, n_steps: int, spy: int) -> np.ndarray:
    """Average over each step of the dated price shocks' factor: 1 before a shock, 1 + size after,
    and the time-weighted mix in the step where it happens."""
    level = np.ones(n_steps)
    starts = np.arange(n_steps) / spy
    for shock in config.compute.price_shocks.values():
        before = np.clip((config.years_from_start(shock.date) - starts) * spy, 0.0, 1.0)
        level *= before + (1.0 - before) * (1.0 + shock.size)
    return level


def build_inputs(config: Config) -> ModelInputs:
    params = kernel_parameters(config)
    order = parameter_order(config)
    if set(order) != set(params):
        raise AssertionError(f"kernel layout and config schema disagree: {sorted(set(order) ^ set(params))}")
    drawn = drawn_parameters(config)
    tables = np.stack([params[k].table() for k in order])
    closed = [params[k].closed_form() for k in order]
    form = [layout.FORM_TABLE if c is None else (layout.FORM_EXP if c[0] else layout.FORM_AFFINE) for c in closed]
    loc_scale = [(0.0, 0.0) if c is None else c[1:] for c in closed]
    drawn_slot = np.array([drawn.index(k) if k in drawn else -1 for k in order], dtype=np.int64)

    rank_corr = config.parameter_correlation.full(drawn, set(order) - set(drawn))
    # Spearman rank correlation -> the Pearson correlation of the Gaussian copula.
    pearson = 2.0 * np.sin(np.pi * rank_corr / 6.0)
    chol_param = _cholesky(pearson, "parameter_correlation")
    chol_shock = _cholesky(config.shocks.full(config.shock_channels), "shocks")

    spy = config.simulation.steps_per_year
    years = [str(y) for y in config.years]
    n_steps = len(years) * spy
    events = list(config.funding.scheduled.values())
    windows = [_closing_window(e) for e in events]
    ev_start = [config.years_from_start(w[0]) for w in windows]
    ev_end = [config.years_from_start(w[1]) for w in windows]
    return ModelInputs(
        antithetic=bool(config.simulation.antithetic),
        spy=spy,
        n_years=len(years),
        tables=np.ascontiguousarray(tables),
        form=np.array(form, dtype=np.int64),
        loc_scale=np.array(loc_scale, dtype=np.float64).reshape(len(order), 2),
        drawn_slot=drawn_slot,
        z_min=float(Z_GRID[0]),
        z_step=float(Z_GRID[1] - Z_GRID[0]),
        chol_param=chol_param,
        chol_first=np.array([np.flatnonzero(row)[0] for row in chol_param], dtype=np.int64),
        seg_launch=np.array([config.years_from_start(s.launch) if s.launch else 0.0
                             for s in config.revenue.values()]),
        share=np.array([config.costs.partner_share[y] for y in years]),
        tc_plan=np.array([config.training.plan[y] for y in years]),
        plan_rate=plan_run_rate(config, np.arange(n_steps + 1) / spy),
        price_level=price_level(config, n_steps, spy),
        ev_start=np.array(ev_start, dtype=float),
        ev_end=np.array(ev_end, dtype=float),
        ev_prob=np.array([e.probability for e in events], dtype=float),
        ev_tranches=np.array([e.tranches for e in events], dtype=np.int64),
        ev_period=np.array([e.tranche_period for e in events], dtype=float),
        ev_gamma=np.array([e.revenue_condition for e in events], dtype=float),
        # Handled here, not bounded in the schema: a lane raises at most once a step, so a cap above the step count
        # is the step count (exactly), and the kernel's int64 takes it (2**64 failed in numba's typing).
        max_raises=int(min(config.funding.contingent.max_raises, n_steps)),
        initial_burn=float(config.funding.initial_burn),
        chol_shock=chol_shock,
        theta_params=np.array([order.index(k) for k in drawn], dtype=np.int64),
        seg_capped=np.array([s.ceiling is not None for s in config.revenue.values()], dtype=np.bool_),
        **contract_arrays(config),
    )


def _closing_window(event: ScheduledRaise) -> tuple[dt.date, dt.date]:
    """The first and last date a scheduled raise can close: its date twice, or its window."""
    if event.date is not None:
        return event.date, event.date
    assert event.window is not None  # ScheduledRaise's validator requires exactly one of date and window
    return event.window


def contract_arrays(config: Config) -> dict[str, np.ndarray]:
    """Per simulated year: the contracts' capacity in units (sum of amount / unit_price), their amounts and their
    take-or-pay amounts ($B a year), model v2."""
    years = [str(y) for y in config.years]
    capacity, amount, top = (np.zeros(len(years)) for _ in range(3))
    for contract in config.compute.contracts.values():
        for j, y in enumerate(years):
            a = contract.amount.get(y, 0.0)
            if a > 0:
                capacity[j] += a / contract.price(y)
                amount[j] += a
                top[j] += contract.take_or_pay * a
    return {"capacity": capacity, "contract_amount": amount, "contract_top": top}


def committed_after_end(config: Config) -> float:
    """What the contracts still owe after the horizon, $B: take_or_pay x amount of every year past end_year (the
    rest of an amount is paid only if used). model v2: reported beside the funding gap, not in it."""
    end = config.simulation.end_year
    return float(sum(c.take_or_pay * a for c in config.compute.contracts.values()
                     for y, a in c.amount.items() if int(y) > end))


def _cholesky(matrix: np.ndarray, where: str) -> np.ndarray:
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise ConfigError(f"{where}.matrix: not positive definite after the rank-to-normal transform") from None
