"""The model of ``simulator/reference.py`` (and the numba kernel) written as plain vectorised NumPy.

This is what a competent user would write instead of numba, and it is the baseline of the
speed comparison: every quantity of the model is an array over paths, shape (n,), and only the
time steps are a Python loop.  Where the reference branches per path, masks and ``np.where`` or
work on the subset of paths concerned (events, raises) take its place.

Random numbers come from ``numpy.random.default_rng(seed)`` (PCG64).  They are not the kernel's
stream, so paths differ from the kernel's one by one, but the model and the distributions are the
same: the Poisson event counts and their within-step time are drawn separately (a count, and an
independent uniform) where the kernel inverts one uniform for both, which is the same joint law.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.kernel import (
    A_CASH,
    A_COGS,
    A_COMPUTE,
    A_CONTRACT,
    A_FCF,
    A_IDLE,
    A_RESALE,
    A_REV,
    A_SPOT,
    A_UNITS,
    A_UTIL,
    ANNUAL_VARS,
    FORM_EXP,
    FORM_TABLE,
    N_GLOBAL,
    P_CASH_INTEREST,
    P_COMP_INTENSITY,
    P_COMP_SEVERITY,
    P_COOLDOWN,
    P_CREDIT_LIMIT,
    P_CREDIT_RATE,
    P_CUT_FACTOR,
    P_DISTRESS_FACTOR,
    P_DISTRESS_LIMIT,
    P_DISTRESS_SIZE,
    P_ELASTICITY,
    P_GM0,
    P_INITIAL_CASH,
    P_LOOKAHEAD,
    P_MARKET_PHI,
    P_MIN_CASH,
    P_OPEX_BASE,
    P_OPEX_GROWTH,
    P_OPEX_RATIO,
    P_PRICE_DRIFT,
    P_PRICE_SIGMA,
    P_RAISE_A,
    P_RAISE_B,
    P_RAISE_C,
    P_RAISE_CAP,
    P_RAISE_MULTIPLE,
    P_RESALE,
    P_RUNWAY_FLOOR,
    P_SUPPLY_HALF_LIFE,
    P_SUPPLY_INTENSITY,
    P_SUPPLY_SIZE,
    P_USAGE_DRIFT,
    P_USAGE_SIGMA,
    S_CASH_END,
    S_CREDIT_END,
    S_CREDIT_MAX,
    S_FIRST_SHORTFALL,
    S_FUNDING_GAP,
    S_LOWEST_CASH,
    S_N_RAISES,
    S_RAISED_CONTINGENT,
    S_RAISED_SCHEDULED,
    SCALAR_VARS,
    SEG_HALF_LIFE,
    SEG_RUN_RATE,
    SEGMENT_WIDTH,
)
from simulator.model import ModelInputs


def _at(x, idx):
    """``x`` restricted to the paths ``idx``: a per-path array is indexed, a shared scalar is not."""
    return x[idx] if isinstance(x, np.ndarray) else x


def _log_mean_factor(d: np.ndarray) -> np.ndarray:
    """(e^d - 1) / d elementwise, 1 + d/2 where |d| < 1e-12 (as the kernel)."""
    small = np.abs(d) < 1e-12
    safe = np.where(small, 1.0, d)
    return np.where(small, 1.0 + 0.5 * d, np.expm1(safe) / safe)


def _ramp_integral(d, a, b):
    """Integral of exp(d s) for s from a to b, elementwise."""
    return np.exp(d * a) * (b - a) * _log_mean_factor(d * (b - a))


def simulate_numpy(inputs: ModelInputs, n_paths: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (theta (n, n_drawn), annual (n, len(kernel.ANNUAL_VARS), n_years), scalars (n, len(kernel.SCALAR_VARS))),
    same layout and meaning as kernel.simulate_block's outputs."""
    m = inputs
    n = int(n_paths)
    rng = np.random.default_rng(seed)
    n_par, n_z = m.tables.shape
    n_drawn = m.chol_param.shape[0]
    n_seg = m.seg_launch.shape[0]
    n_ev = m.ev_start.shape[0]
    n_ch = m.chol_shock.shape[0]
    ev0 = N_GLOBAL + SEGMENT_WIDTH * n_seg
    spy, n_years = m.spy, m.n_years

    # 1. Parameters: Gaussian copula, then each score clamped to the tables' z grid and turned into a value:
    # a normal's or lognormal's closed form, or the quantile table, interpolated linearly on its uniform grid
    # (as the kernel; np.interp gives the same, slower, by bisection).
    zc = m.chol_param @ rng.standard_normal((n_drawn, n))  # (n_drawn, n)
    theta_out = np.empty((n, n_drawn))
    par: list = []  # par[k]: an (n,) array if drawn, else the shared float
    for k in range(n_par):
        d = m.drawn_slot[k]
        if d >= 0 and m.form[k] != FORM_TABLE:
            loc, scale = m.loc_scale[k]
            col = loc + scale * np.clip(zc[d], m.z_min, m.z_min + m.z_step * (n_z - 1))
            col = np.exp(col) if m.form[k] == FORM_EXP else col
            theta_out[:, d] = col
            par.append(col)
        elif d >= 0:
            pos = (zc[d] - m.z_min) / m.z_step
            np.clip(pos, 0.0, n_z - 1, out=pos)
            i = np.minimum(pos.astype(np.int64), n_z - 2)
            pos -= i
            lo = m.tables[k, i]
            col = lo + pos * (m.tables[k, i + 1] - lo)
            theta_out[:, d] = col
            par.append(col)
        else:
            par.append(float(m.tables[k, 0]))

    # 2. Scheduled raises: closing time in the window and the closing draw.
    ev_time = np.empty((n_ev, n))
    ev_u = np.empty((n_ev, n))
    for e in range(n_ev):
        ev_time[e] = m.ev_start[e] + rng.random(n) * (m.ev_end[e] - m.ev_start[e])
        ev_u[e] = rng.random(n)
    ev_pending = np.ones((n_ev, n), dtype=bool)
    ev_closed = np.zeros((n_ev, n), dtype=bool)
    ev_paid = np.zeros((n_ev, n), dtype=np.int64)
    ev_last_payment = m.ev_end + np.maximum(m.ev_tranches - 1, 0) * m.ev_period

    # 3. Initial state.
    dt = 1.0 / spy
    sqdt = math.sqrt(dt)
    seg = [[par[N_GLOBAL + SEGMENT_WIDTH * s + f] for f in range(SEGMENT_WIDTH)] for s in range(n_seg)]
    log_r = [np.log(np.broadcast_to(seg[s][SEG_RUN_RATE], (n,))).copy() for s in range(n_seg)]
    rate = [np.exp(x) for x in log_r]  # exp(log_r), kept alongside
    kappa = [math.log(2.0) / seg[s][SEG_HALF_LIFE] for s in range(n_seg)]
    ring = np.full((spy, n), -m.initial_burn * dt)
    ring_sum = np.full(n, -m.initial_burn)
    ln_p = np.zeros(n)  # the trend's (model v2)
    jump_dev = np.zeros(n)  # supply shocks' deviation from it, fading with half-life h_J
    j_decay = 2.0 ** (-dt / np.asarray(par[P_SUPPLY_HALF_LIFE]))
    j_half = 2.0 ** (-dt / (2.0 * np.asarray(par[P_SUPPLY_HALF_LIFE])))
    ln_u = np.zeros(n)
    market = np.zeros(n)
    cash = np.array(np.broadcast_to(par[P_INITIAL_CASH], (n,)), dtype=float)
    min_cash = par[P_MIN_CASH]
    credit = np.zeros(n)
    credit_max = np.zeros(n)
    raised_sched = np.zeros(n)
    raised_cont = np.zeros(n)
    n_raises = np.zeros(n, dtype=np.int64)
    last_raise = np.full(n, -1e300)
    lowest = np.full(n, 1e300)
    gap = np.zeros(n)
    first_sf = np.full(n, -1.0)
    survival = np.zeros(n, dtype=bool)
    c0 = 1.0 - par[P_GM0]
    mean_comp = par[P_COMP_INTENSITY] * dt
    mean_supply = par[P_SUPPLY_INTENSITY] * dt
    jump_comp = np.log1p(-par[P_COMP_SEVERITY])
    jump_supply = np.log1p(par[P_SUPPLY_SIZE])
    phi_dt = par[P_MARKET_PHI] ** dt
    market_vol = np.sqrt(1.0 - phi_dt * phi_dt)
    s_p = par[P_PRICE_SIGMA]
    s_u = par[P_USAGE_SIGMA]
    step_p = (par[P_PRICE_DRIFT] - 0.5 * s_p * s_p) * dt
    step_u = (par[P_USAGE_DRIFT] - 0.5 * s_u * s_u) * dt
    g_o = par[P_OPEX_GROWTH]
    credit_limit = par[P_CREDIT_LIMIT]
    has_credit = np.any(np.asarray(credit_limit) > 0.0)
    acc = np.zeros((len(ANNUAL_VARS), n_years, n))  # annual, paths last while accumulating
    chol_bridge = m.chol_shock[:n_seg, :n_seg]
    burn = np.empty(n)
    tmp = np.empty(n)

    for k in range(n_years * spy):
        y = k // spy
        t0 = k * dt
        t1 = t0 + dt
        # Decisions at the start of the step.
        run_rate0 = np.zeros(n)
        for s in range(n_seg):
            if m.seg_launch[s] <= t0:
                run_rate0 += rate[s]
        np.negative(ring_sum, out=burn)
        np.maximum(burn, 0.0, out=burn)
        cut = np.where(((burn > 0.0) & (cash < par[P_RUNWAY_FLOOR] * burn)) | survival, par[P_CUT_FACTOR], 1.0)
        ratio0 = np.maximum(run_rate0 / m.plan_rate[k], 1e-9)

        # Shocks of the step: channel increments, the segments' bridge averages, event counts and times.
        epsc = m.chol_shock @ rng.standard_normal((n_ch, n))
        bridge = chol_bridge @ rng.standard_normal((n_seg, n))
        n_comp = rng.poisson(mean_comp, n)
        n_supply = rng.poisson(mean_supply, n)
        comp = np.flatnonzero(n_comp)
        when_comp = rng.random(comp.size)
        supply = np.flatnonzero(n_supply)
        when_supply = rng.random(supply.size)

        # Revenue.
        rev = np.zeros(n)
        run_rate1 = np.zeros(n)
        for s in range(n_seg):
            if m.seg_launch[s] >= t1:
                continue
            r0, g0, ginf, _, sig, exposure, ceiling = seg[s]
            kap = kappa[s]
            start = max(t0, m.seg_launch[s])
            tau = t1 - start
            drift = ginf * tau + (g0 - ginf) * (np.exp(-kap * start) - np.exp(-kap * t1)) / kap
            curvature = kap * (g0 - ginf) * np.exp(-kap * (start + 0.5 * tau))
            if m.seg_capped[s]:  # logistic growth toward the ceiling while growth is positive (model v2)
                rho = rate[s] / ceiling
                positive = drift > 0.0
                curvature = np.where(positive, (1.0 - rho) * (curvature + (drift / tau) ** 2 * rho), curvature)
                drift = np.where(positive, drift - np.log1p(rho * np.expm1(drift)), drift)
            x0 = log_r[s]
            x1 = x0 + drift - 0.5 * sig * sig * tau
            x1 += sig * math.sqrt(tau) * epsc[s]
            d = x1 - x0
            ramp = _log_mean_factor(d)
            if comp.size:
                dc = d[comp]
                wc = when_comp
                jump = n_comp[comp] * _at(exposure, comp) * _at(jump_comp, comp)
                ramp[comp] = _ramp_integral(dc, 0.0, wc) + np.exp(jump) * _ramp_integral(dc, wc, 1.0)
                x1[comp] += jump
            wiggle = sig * math.sqrt(tau / 12.0) * bridge[s] + sig * sig * tau / 24.0
            # tau e^{x0} ramp (1 + curvature tau^2 / 12) e^{wiggle}
            wiggle += x0
            np.exp(wiggle, out=wiggle)
            wiggle *= ramp
            wiggle *= 1.0 + curvature * (tau * tau / 12.0)
            wiggle *= tau
            rev += wiggle
            log_r[s] = x1
            np.exp(x1, out=rate[s])
            run_rate1 += rate[s]

        # Compute price and usage: log-midpoints, the fading deviation at mid-step, a supply shock from its time on.
        ln_mid = ln_p.copy()
        ln_p += step_p
        ln_p += s_p * sqdt * epsc[n_seg]
        ln_mid += ln_p
        ln_mid *= 0.5
        ln_mid += jump_dev * j_half
        price_mid = np.exp(ln_mid)
        jump_dev *= j_decay
        if supply.size:
            jump = n_supply[supply] * _at(jump_supply, supply)
            price_mid[supply] *= when_supply + (1.0 - when_supply) * np.exp(jump)
            jump_dev[supply] += jump
        price_mid *= m.price_level[k]  # dated shocks of the config
        ln_mid = ln_u.copy()
        ln_u += step_u
        ln_u += s_u * sqdt * epsc[n_seg + 1]
        ln_mid += ln_u
        ln_mid *= 0.5

        # Compute (model v2): demand in units, contracted capacity, then spot, idle and resale.
        units_inf = c0 * np.exp(ln_mid) * rev
        units_tr = dt * m.tc_plan[y] * ratio0 ** par[P_ELASTICITY] * cut
        demand = units_inf + units_tr
        capacity = dt * m.capacity[y]
        util = np.minimum(1.0, demand / capacity) if capacity > 0 else np.ones(n)
        used = util * (dt * m.contract_amount[y])
        idle = (1.0 - util) * (dt * m.contract_top[y])
        spot = price_mid * np.maximum(0.0, demand - capacity)
        resold = par[P_RESALE] * price_mid * np.maximum(0.0, capacity - demand)
        cogs = np.where(demand > 0, units_inf / np.where(demand > 0, demand, 1.0) * (used + spot), 0.0)
        compute = used + idle + spot - resold

        # Other cash costs.
        if isinstance(g_o, np.ndarray):
            small = np.abs(g_o) <= 1e-12
            g_safe = np.where(small, 1.0, g_o)
            opex = par[P_OPEX_BASE] * np.where(small, dt, (np.exp(g_safe * t1) - np.exp(g_safe * t0)) / g_safe)
        elif abs(g_o) > 1e-12:
            opex = par[P_OPEX_BASE] * (math.exp(g_o * t1) - math.exp(g_o * t0)) / g_o
        else:
            opex = par[P_OPEX_BASE] * dt
        opex = opex + par[P_OPEX_RATIO] * rev
        np.maximum(cash, 0.0, out=tmp)
        interest = par[P_CASH_INTEREST] * tmp * dt - par[P_CREDIT_RATE] * credit * dt  # credit drawn at the start

        # Cash flow.
        fcf = rev - m.share[y] * rev - compute - opex + interest
        cash += fcf
        j = k % spy
        ring_sum += fcf
        ring_sum -= ring[j]
        ring[j] = fcf
        market *= phi_dt
        market += market_vol * epsc[n_seg + 2]
        ratio1 = np.maximum(run_rate1 / m.plan_rate[k + 1], 1e-9)

        # Scheduled funding (events whose window has not opened or whose tranches are all due are skipped).
        for e in range(n_ev):
            if m.ev_start[e] >= t1 or ev_last_payment[e] < t0 - 1e-9:
                continue
            decide = ev_pending[e] & (ev_time[e] < t1)
            if decide.any():
                idx = np.flatnonzero(decide)
                p = np.full(idx.size, m.ev_prob[e])
                if m.ev_gamma[e] > 0.0:
                    p *= np.minimum(1.0, ratio1[idx] ** m.ev_gamma[e])
                ev_pending[e, idx] = False
                ev_closed[e, idx] = ev_u[e, idx] < p
            payment = par[ev0 + e] / m.ev_tranches[e]
            while True:
                due = ev_closed[e] & (ev_paid[e] < m.ev_tranches[e]) & (ev_time[e] + ev_paid[e] * m.ev_period[e] < t1)
                if not due.any():
                    break
                idx = np.flatnonzero(due)
                pay = _at(payment, idx)
                cash[idx] += pay
                raised_sched[idx] += pay
                ev_paid[e, idx] += 1

        # Contingent raise: a yearly success intensity; distress terms under the floor, none under -distress_limit.
        if m.max_raises > 0:
            np.negative(ring_sum, out=burn)
            np.maximum(burn, 0.0, out=burn)
            want = (n_raises < m.max_raises) & (t1 - last_raise >= par[P_COOLDOWN] - 1e-9) \
                & (cash < min_cash + par[P_LOOKAHEAD] * burn)
            idx = np.flatnonzero(want)
            if idx.size:
                logit = _at(par[P_RAISE_A], idx) + _at(par[P_RAISE_B], idx) * np.log(ratio1[idx]) \
                    + _at(par[P_RAISE_C], idx) * market[idx]
                intensity = 1.0 / (1.0 + np.exp(-logit))
                distress = cash[idx] < _at(min_cash, idx)
                intensity = np.where(distress, intensity * _at(par[P_DISTRESS_FACTOR], idx), intensity)
                intensity = np.where(cash[idx] < -_at(par[P_DISTRESS_LIMIT], idx), 0.0, intensity)
                size_factor = np.where(distress, _at(par[P_DISTRESS_SIZE], idx), 1.0)
                won = rng.random(idx.size) < -np.expm1(-intensity * dt)
                idx = idx[won]
                size = np.minimum(_at(par[P_RAISE_MULTIPLE], idx) * run_rate1[idx], _at(par[P_RAISE_CAP], idx))
                size = size * size_factor[won]
                cash[idx] += size
                raised_cont[idx] += size
                n_raises[idx] += 1
                last_raise[idx] = t1

        # Credit line: drawn below the floor, repaid above it.
        if has_credit:
            draw = (cash < min_cash) & (credit < credit_limit)
            repay = ~draw & (cash > min_cash) & (credit > 0.0)
            move = np.where(draw, np.minimum(credit_limit - credit, min_cash - cash), 0.0)
            move = np.where(repay, -np.minimum(credit, cash - min_cash), move)
            cash += move
            credit += move
            np.maximum(credit_max, credit, out=credit_max)

        # Shortfall: cash is not reset, so the gap measures the capital that was missing.
        np.minimum(lowest, cash, out=lowest)
        short = cash < min_cash
        np.copyto(first_sf, k, where=short & (first_sf < 0.0))
        np.subtract(min_cash, cash, out=tmp)
        np.maximum(gap, tmp, out=tmp)
        np.copyto(gap, tmp, where=short)
        # Survival mode: on at a step end in shortfall, off at the first with cash >= min_cash + lookahead x burn.
        np.negative(ring_sum, out=burn)
        np.maximum(burn, 0.0, out=burn)
        survival = short | (survival & (cash < min_cash + par[P_LOOKAHEAD] * burn))

        acc[A_REV, y] += rev
        acc[A_COGS, y] += cogs
        acc[A_FCF, y] += fcf
        acc[A_COMPUTE, y] += compute
        acc[A_UNITS, y] += demand
        acc[A_CONTRACT, y] += used
        acc[A_SPOT, y] += spot
        acc[A_IDLE, y] += idle
        acc[A_RESALE, y] += resold
        acc[A_UTIL, y] += util * dt
        acc[A_CASH, y] = cash

    annual = np.ascontiguousarray(acc.transpose(2, 0, 1))
    scalars = np.empty((n, len(SCALAR_VARS)))
    scalars[:, S_CASH_END] = cash
    scalars[:, S_LOWEST_CASH] = lowest
    scalars[:, S_FUNDING_GAP] = gap
    scalars[:, S_FIRST_SHORTFALL] = first_sf
    scalars[:, S_RAISED_SCHEDULED] = raised_sched
    scalars[:, S_RAISED_CONTINGENT] = raised_cont
    scalars[:, S_CREDIT_MAX] = credit_max
    scalars[:, S_CREDIT_END] = credit
    scalars[:, S_N_RAISES] = n_raises
    return theta_out, annual, scalars
