"""The numba kernel: MODEL.md §1-§6 for a block of paths.

Only jitted functions and the layout constants they share with the engine live here:
arrays and scalars in, ``out`` arrays filled.  Randomness is counter-based: a path's
numbers are a SplitMix64 stream keyed by ``(seed, path_id)`` alone, so results do not
depend on thread count, chunking or machine, and any path can be replayed by its id.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# ------------------------------------------------------------------ layout
# Scalar parameters shared by all paths' models, in kernel order (dotted config keys).
GLOBAL_PARAMS = (
    "competition.intensity", "competition.severity",
    "compute.gross_margin_0", "compute.price_drift", "compute.price_sigma",
    "compute.supply_shock_intensity", "compute.supply_shock_size",
    "compute.usage_drift", "compute.usage_sigma",
    "costs.opex_base", "costs.opex_growth", "costs.opex_revenue_ratio", "costs.cash_interest",
    "training.deferrable", "training.revenue_elasticity", "training.runway_floor", "training.cut_factor",
    "funding.initial_cash", "funding.min_cash",
    "funding.contingent.lookahead", "funding.contingent.intercept", "funding.contingent.revenue_slope",
    "funding.contingent.market_slope", "funding.contingent.size_multiple", "funding.contingent.size_cap",
    "funding.contingent.cooldown", "funding.credit.limit", "market.persistence",
)
(P_COMP_INTENSITY, P_COMP_SEVERITY, P_GM0, P_PRICE_DRIFT, P_PRICE_SIGMA, P_SUPPLY_INTENSITY,
 P_SUPPLY_SIZE, P_USAGE_DRIFT, P_USAGE_SIGMA, P_OPEX_BASE, P_OPEX_GROWTH, P_OPEX_RATIO,
 P_CASH_INTEREST, P_DEFERRABLE, P_ELASTICITY, P_RUNWAY_FLOOR, P_CUT_FACTOR, P_INITIAL_CASH,
 P_MIN_CASH, P_LOOKAHEAD, P_RAISE_A, P_RAISE_B, P_RAISE_C, P_RAISE_MULTIPLE, P_RAISE_CAP,
 P_COOLDOWN, P_CREDIT_LIMIT, P_MARKET_PHI) = range(len(GLOBAL_PARAMS))
N_GLOBAL = len(GLOBAL_PARAMS)
# Per revenue segment, starting at N_GLOBAL + SEGMENT_WIDTH * s.
SEGMENT_PARAMS = ("run_rate", "growth_initial", "growth_long_run", "half_life", "sigma", "competition_exposure")
SEG_RUN_RATE, SEG_G0, SEG_GINF, SEG_HALF_LIFE, SEG_SIGMA, SEG_EXPOSURE = range(len(SEGMENT_PARAMS))
SEGMENT_WIDTH = len(SEGMENT_PARAMS)
# After the segments: one amount per scheduled raise.

# Per-year outputs, annual[path, variable, year].
ANNUAL_VARS = ("revenue", "cogs", "fcf", "cash", "compute_spend")
A_REV, A_COGS, A_FCF, A_CASH, A_COMPUTE = range(len(ANNUAL_VARS))
# Per-path scalar outputs, scalars[path, k].
SCALAR_VARS = ("cash_end", "lowest_cash", "funding_gap", "first_shortfall_step", "raised_scheduled",
               "raised_contingent", "credit_drawn_max", "credit_outstanding_end", "n_raises")
(S_CASH_END, S_LOWEST_CASH, S_FUNDING_GAP, S_FIRST_SHORTFALL, S_RAISED_SCHEDULED,
 S_RAISED_CONTINGENT, S_CREDIT_MAX, S_CREDIT_END, S_N_RAISES) = range(len(SCALAR_VARS))
# Per-step outputs of ``trace_block``, steps[path, step, k]: revenue and FCF annualised (/ dt),
# gross margin 1 - cogs / revenue, cash at the end of the step.
STEP_VARS = ("revenue", "gross_margin", "fcf", "cash")
T_REV, T_GM, T_FCF, T_CASH = range(len(STEP_VARS))

# ------------------------------------------------------------------ random numbers
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_KEY_SALT = np.uint64(0x5DEECE66D2B7E151)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53
TWO_PI = 2.0 * math.pi

_jit = dict(cache=True, error_model="numpy", nogil=True)


@njit(inline="always", **_jit)
def mix64(z):
    """SplitMix64 finaliser (a bijection of uint64 with full avalanche)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(inline="always", **_jit)
def path_key(seed, path_id):
    """Start of the stream of path ``path_id`` under ``seed``."""
    return mix64(mix64(np.uint64(seed) ^ _KEY_SALT) + np.uint64(path_id) * GOLDEN)


@njit(inline="always", **_jit)
def next_uniform(state):
    """(new state, uniform in [0, 1) with 53 random bits)."""
    state = state + GOLDEN
    return state, float(np.int64(mix64(state) >> np.uint64(11))) * _TO_UNIT


def _ziggurat_tables(layers: int = 256, r: float = 3.6541528853610088, v: float = 4.92867323399e-3):
    """Marsaglia & Tsang's ziggurat for the standard normal: layer edges x[0] > x[1] = r > ... > x[256] = 0,
    each layer of area v; x[0] = v / f(r) is the base layer's pseudo-width (rectangle plus tail)."""
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    x = np.zeros(layers + 1)
    x[0], x[1] = v / f(r), r
    for i in range(1, layers - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(v / x[i] + f(x[i])))
    x[layers] = 0.0
    return x, np.exp(-0.5 * x * x)


ZIG_X, ZIG_F = _ziggurat_tables()
ZIG_R = ZIG_X[1]


@njit(inline="always", **_jit)
def next_normal(state):
    """(new state, standard normal) by the ziggurat: one 64-bit draw ~99% of the time.

    Low 8 bits pick the layer, bit 8 the sign, the top 53 bits the position in the layer.
    """
    while True:
        state = state + GOLDEN
        bits = mix64(state)
        i = int(bits & np.uint64(255))
        sign = 1.0 if (bits >> np.uint64(8)) & np.uint64(1) else -1.0
        x = float(np.int64(bits >> np.uint64(11))) * _TO_UNIT * ZIG_X[i]
        if x < ZIG_X[i + 1]:
            return state, sign * x
        if i == 0:  # the tail beyond r (Marsaglia 1964)
            while True:
                state, u1 = next_uniform(state)
                state, u2 = next_uniform(state)
                t = -math.log1p(-u1) / ZIG_R
                if -2.0 * math.log1p(-u2) > t * t:
                    return state, sign * (ZIG_R + t)
        state, u = next_uniform(state)
        if ZIG_F[i + 1] + u * (ZIG_F[i] - ZIG_F[i + 1]) < math.exp(-0.5 * x * x):
            return state, sign * x


@njit(inline="always", **_jit)
def fill_normals(state, out, n, sign):
    """Fill ``out[:n]`` with standard normals, times ``sign`` (-1 for an antithetic partner)."""
    for i in range(n):
        state, z = next_normal(state)
        out[i] = sign * z
    return state


@njit(inline="always", **_jit)
def draw_uniform(state, mirror):
    """A uniform, mirrored to 1 - u for an antithetic partner."""
    state, u = next_uniform(state)
    return state, (1.0 - u) if mirror else u


@njit(inline="always", **_jit)
def correlate(chol, z, out, n):
    """out = chol @ z for a lower-triangular ``chol``."""
    for i in range(n):
        acc = 0.0
        for j in range(i + 1):
            acc += chol[i, j] * z[j]
        out[i] = acc


@njit(inline="always", **_jit)
def correlate_sparse(chol, first, z, out, n):
    """out = chol @ z where row i of the lower-triangular ``chol`` is zero before column ``first[i]``."""
    for i in range(n):
        acc = 0.0
        for j in range(first[i], i + 1):
            acc += chol[i, j] * z[j]
        out[i] = acc


@njit(inline="always", **_jit)
def interp_table(table, z, z_min, z_step):
    """Quantile table lookup at normal score ``z`` (linear interpolation, clamped)."""
    pos = (z - z_min) / z_step
    last = table.shape[0] - 1
    if pos <= 0.0:
        return table[0]
    if pos >= last:
        return table[last]
    i = int(pos)
    frac = pos - i
    return table[i] + frac * (table[i + 1] - table[i])


@njit(inline="always", **_jit)
def poisson_count(u, mean, p_zero):
    """Poisson(mean) by inversion of one uniform, and where ``u`` fell within that count's
    probability: a second uniform, independent of the count, used as the time of the events
    within the step."""
    p = p_zero  # exp(-mean), hoisted by the caller
    cdf = p
    k = 0
    while u > cdf and k < 1000:
        k += 1
        p *= mean / k
        cdf += p
    return k, (u - (cdf - p)) / p if p > 0.0 else 0.5


@njit(inline="always", **_jit)
def ramp_integral(d, a, b):
    """Integral of exp(d s) for s from a to b."""
    return math.exp(d * a) * (b - a) * log_mean_factor(d * (b - a))


@njit(inline="always", **_jit)
def exp_small(w):
    """exp(w): Taylor series to w^5 for |w| < 0.1 (relative error < 2e-9), libm otherwise.
    Used for the bridge factor, whose argument is ~0.02: it saves a libm call per segment and step."""
    if abs(w) < 0.1:
        return 1.0 + w * (1.0 + w * (0.5 + w * (1.0 / 6.0 + w * (1.0 / 24.0 + w * (1.0 / 120.0)))))
    return math.exp(w)


@njit(inline="always", **_jit)
def log_mean_factor(d):
    """(e^d - 1) / d: the average of exp over a linear ramp from 0 to d."""
    if abs(d) < 1e-12:
        return 1.0 + 0.5 * d
    return math.expm1(d) / d


# ------------------------------------------------------------------ the model


# Per-segment constants and state of one path, seg[s, SG_*] (scratch owned by the caller).
(SG_RATE, SG_DECAY, SG_DECAY_STEP, SG_HALF_DECAY, SG_KAPPA, SG_AMP, SG_GINF, SG_SIGMA, SG_DRIFT,
 SG_AMP_K, SG_VOL, SG_BRIDGE_SD, SG_BRIDGE_MEAN, SG_CURV, SG_EXPOSURE) = range(15)
SEG_SCRATCH = 15


@njit(**_jit)
def simulate_path(seed, path_id, antithetic, spy, n_years, tables, drawn_slot, z_min, z_step, chol_param, chol_first,
                  seg_launch, share, tc_plan, committed, plan_rate, price_level, ev_start, ev_end, ev_prob,
                  ev_tranches, ev_period, ev_gamma, max_raises, initial_burn, chol_shock,
                  theta, z, zc, eps, epsc, bridge, seg, ring, ev_time, ev_u, ev_state, ev_paid,
                  theta_out, annual, scalars, steps):
    """Simulate one path; fill ``theta_out`` (drawn parameters), ``annual`` (V, Y) and ``scalars``,
    and, when ``steps.shape[0] > 0``, ``steps`` (T, len(STEP_VARS)) with each step's values.

    ``theta`` ... ``ev_paid`` are scratch arrays owned by the caller.  The arithmetic is
    arranged for speed (per-path constants hoisted, exponentials advanced by multiplication);
    ``simulator.reference`` computes the same numbers from the formulas as written.
    """
    n_par = tables.shape[0]
    n_drawn = chol_param.shape[0]
    n_seg = seg_launch.shape[0]
    n_ev = ev_start.shape[0]
    n_ch = chol_shock.shape[0]
    ev0 = N_GLOBAL + SEGMENT_WIDTH * n_seg
    # Antithetic pairs: path 2k+1 replays the stream of path 2k with every normal negated and every
    # uniform mirrored (u -> 1 - u). The ziggurat's rejections depend on |z| only, so the
    # partner's normals are exactly -z.
    mirror = antithetic and path_id % 2 == 1
    sign = -1.0 if mirror else 1.0
    state = path_key(seed, path_id - 1 if mirror else path_id)

    # 1. Parameters: correlated normal scores -> quantile tables (Gaussian copula).
    state = fill_normals(state, z, n_drawn, sign)
    correlate_sparse(chol_param, chol_first, z, zc, n_drawn)
    for k in range(n_par):
        d = drawn_slot[k]
        if d >= 0:
            theta[k] = interp_table(tables[k], zc[d], z_min, z_step)
            theta_out[d] = theta[k]
        else:
            theta[k] = tables[k, 0]

    # 2. Scheduled raises: closing time within the window and the closing draw.
    for e in range(n_ev):
        state, u = draw_uniform(state, mirror)
        ev_time[e] = ev_start[e] + u * (ev_end[e] - ev_start[e])
        state, u = draw_uniform(state, mirror)
        ev_u[e] = u
        ev_state[e] = 0  # 0 pending, 1 closed, 2 failed
        ev_paid[e] = 0

    # 3. Initial state and per-path constants.
    dt = 1.0 / spy
    sqdt = math.sqrt(dt)
    for s in range(n_seg):
        base = N_GLOBAL + SEGMENT_WIDTH * s
        kappa = math.log(2.0) / theta[base + SEG_HALF_LIFE]
        sig = theta[base + SEG_SIGMA]
        amp = theta[base + SEG_G0] - theta[base + SEG_GINF]
        seg[s, SG_RATE] = theta[base + SEG_RUN_RATE]
        seg[s, SG_DECAY] = 1.0                      # exp(-kappa t0), advanced every step
        seg[s, SG_DECAY_STEP] = math.exp(-kappa * dt)
        seg[s, SG_HALF_DECAY] = math.exp(-kappa * 0.5 * dt)
        seg[s, SG_KAPPA] = kappa
        seg[s, SG_AMP] = amp
        seg[s, SG_GINF] = theta[base + SEG_GINF]
        seg[s, SG_SIGMA] = sig
        seg[s, SG_DRIFT] = theta[base + SEG_GINF] * dt - 0.5 * sig * sig * dt
        seg[s, SG_AMP_K] = amp / kappa
        seg[s, SG_VOL] = sig * sqdt
        seg[s, SG_BRIDGE_SD] = sig * math.sqrt(dt / 12.0)
        seg[s, SG_BRIDGE_MEAN] = sig * sig * dt / 24.0
        seg[s, SG_CURV] = kappa * amp * dt * dt / 12.0
        seg[s, SG_EXPOSURE] = theta[base + SEG_EXPOSURE]
    for j in range(spy):
        ring[j] = -initial_burn * dt
    ring_sum = -initial_burn
    ln_p = 0.0
    ln_u = 0.0
    market = 0.0
    cash = theta[P_INITIAL_CASH]
    min_cash = theta[P_MIN_CASH]
    credit = 0.0
    credit_max = 0.0
    raised_sched = 0.0
    raised_cont = 0.0
    n_raises = 0
    last_raise = -1e300
    lowest = 1e300
    gap = 0.0
    first_sf = -1.0
    c0 = 1.0 - theta[P_GM0]
    mean_comp = theta[P_COMP_INTENSITY] * dt
    mean_supply = theta[P_SUPPLY_INTENSITY] * dt
    none_comp = math.exp(-mean_comp)
    none_supply = math.exp(-mean_supply)
    jump_comp = math.log1p(-theta[P_COMP_SEVERITY])
    jump_supply = math.log1p(theta[P_SUPPLY_SIZE])
    phi_dt = theta[P_MARKET_PHI] ** dt
    market_vol = math.sqrt(1.0 - phi_dt * phi_dt)
    s_p = theta[P_PRICE_SIGMA]
    s_u = theta[P_USAGE_SIGMA]
    drift_p = (theta[P_PRICE_DRIFT] - 0.5 * s_p * s_p) * dt
    drift_u = (theta[P_USAGE_DRIFT] - 0.5 * s_u * s_u) * dt
    g_o = theta[P_OPEX_GROWTH]
    # Fixed opex over step k is O_0 e^{g t0} (e^{g dt} - 1) / g: a geometric sequence.
    opex_fixed = theta[P_OPEX_BASE] * (math.expm1(g_o * dt) / g_o if abs(g_o) > 1e-12 else dt)
    opex_step = math.exp(g_o * dt)
    committed_keep = 1.0 - theta[P_DEFERRABLE]
    elasticity = theta[P_ELASTICITY]
    runway_floor = theta[P_RUNWAY_FLOOR]
    for v in range(annual.shape[0]):
        for y in range(n_years):
            annual[v, y] = 0.0

    y = 0
    j = 0  # step within the year
    for k in range(n_years * spy):
        t0 = k * dt
        t1 = t0 + dt
        # Decisions at the start of the step: trailing burn, runway rule, revenue vs plan.
        run_rate0 = 0.0
        for s in range(n_seg):
            if seg_launch[s] <= t0:
                run_rate0 += seg[s, SG_RATE]
        burn = max(0.0, -ring_sum)
        cut = 1.0
        if burn > 0.0 and cash < runway_floor * burn:
            cut = theta[P_CUT_FACTOR]
        ratio0 = max(run_rate0 / plan_rate[k], 1e-9)

        # Shocks of the step: the channels' increments, then for each segment the step's average of
        # its Brownian bridge (so the revenue of a long step has the variance of the continuous model).
        state = fill_normals(state, eps, n_ch, sign)
        correlate(chol_shock, eps, epsc, n_ch)
        state = fill_normals(state, eps, n_seg, sign)
        correlate(chol_shock, eps, bridge, n_seg)
        # Event counts are Poisson per step; MODEL.md's Bernoulli(1 - exp(-lambda dt)) is "count >= 1".
        state, u_comp = draw_uniform(state, mirror)
        state, u_supply = draw_uniform(state, mirror)
        n_comp, when_comp = poisson_count(u_comp, mean_comp, none_comp)
        n_supply, when_supply = poisson_count(u_supply, mean_supply, none_supply)

        # Revenue (§3). The growth curve is integrated exactly; within the step ln R follows its
        # chord plus curvature and bridge corrections, and a competition shock lands at its time.
        rev = 0.0
        run_rate1 = 0.0
        for s in range(n_seg):
            e0 = seg[s, SG_DECAY]
            e1 = e0 * seg[s, SG_DECAY_STEP]
            seg[s, SG_DECAY] = e1
            if seg_launch[s] >= t1:
                continue
            if seg_launch[s] > t0:
                rev += launch_step(seg, s, seg_launch[s], t1, epsc[s], bridge[s], n_comp, when_comp, jump_comp)
                run_rate1 += seg[s, SG_RATE]
                continue
            d = seg[s, SG_DRIFT] + seg[s, SG_AMP_K] * (e0 - e1) + seg[s, SG_VOL] * epsc[s]
            r0 = seg[s, SG_RATE]
            if n_comp > 0:
                jump = n_comp * seg[s, SG_EXPOSURE] * jump_comp
                ramp = ramp_integral(d, 0.0, when_comp) + math.exp(jump) * ramp_integral(d, when_comp, 1.0)
                r1 = r0 * math.exp(d + jump)
            else:
                growth = math.expm1(d)
                ramp = growth / d if abs(d) >= 1e-12 else 1.0 + 0.5 * d
                r1 = r0 * (1.0 + growth)
            # Concave growth lifts the curve above its chord by ~ -G'' tau^2 / 12 on average. The
            # bridge's average over the step is N(0, s^2 tau / 12); the constant s^2 tau / 24 makes
            # the factor's mean exp(s^2 tau / 12), the mean of the integral of exp(bridge).
            wiggle = exp_small(seg[s, SG_BRIDGE_SD] * bridge[s] + seg[s, SG_BRIDGE_MEAN])
            rev += dt * r0 * ramp * (1.0 + seg[s, SG_CURV] * e0 * seg[s, SG_HALF_DECAY]) * wiggle
            seg[s, SG_RATE] = r1
            run_rate1 += r1

        # Compute price and usage (§4); costs use the step's average (log-midpoint).
        ln_p0 = ln_p
        ln_u0 = ln_u
        # The price is exp(mid_p) * level; products with it are taken as one exp of the summed logs.
        ln_p += drift_p + s_p * sqdt * epsc[n_seg]
        mid_p = 0.5 * (ln_p0 + ln_p)
        level = price_level[k]  # dated shocks of the config
        if n_supply > 0:  # the step's average price: the jump applies after its time
            level *= when_supply + (1.0 - when_supply) * math.exp(n_supply * jump_supply)
            ln_p += n_supply * jump_supply
        ln_u += drift_u + s_u * sqdt * epsc[n_seg + 1]
        cogs = c0 * level * math.exp(mid_p + 0.5 * (ln_u0 + ln_u)) * rev

        # Other cash costs (§5).
        opex = opex_fixed + theta[P_OPEX_RATIO] * rev
        opex_fixed *= opex_step
        fixed = committed[y] * committed_keep
        flexible = (1.0 - fixed) * level * math.exp(mid_p + elasticity * math.log(ratio0)) * cut
        training = dt * tc_plan[y] * (fixed + flexible)
        interest = theta[P_CASH_INTEREST] * max(cash, 0.0) * dt

        # Cash flow (§6).
        fcf = rev - share[y] * rev - cogs - opex - training + interest
        cash += fcf
        ring_sum += fcf - ring[j]
        ring[j] = fcf
        market = phi_dt * market + market_vol * epsc[n_seg + 2]
        ratio1 = max(run_rate1 / plan_rate[k + 1], 1e-9)

        # Scheduled funding.
        for e in range(n_ev):
            if ev_state[e] == 0 and ev_time[e] < t1:
                p = ev_prob[e]
                if ev_gamma[e] > 0.0:
                    p *= min(1.0, ratio1 ** ev_gamma[e])
                ev_state[e] = 1 if ev_u[e] < p else 2
            if ev_state[e] == 1:
                while ev_paid[e] < ev_tranches[e] and ev_time[e] + ev_paid[e] * ev_period[e] < t1:
                    payment = theta[ev0 + e] / ev_tranches[e]
                    cash += payment
                    raised_sched += payment
                    ev_paid[e] += 1

        # Contingent raise: a yearly success probability, spread over the step. Its uniform is drawn
        # every step, used or not, so two configs share every later random number (common random numbers).
        state, u_raise = draw_uniform(state, mirror)
        burn1 = max(0.0, -ring_sum)
        if (n_raises < max_raises and t1 - last_raise >= theta[P_COOLDOWN] - 1e-9
                and cash < min_cash + theta[P_LOOKAHEAD] * burn1):
            logit = theta[P_RAISE_A] + theta[P_RAISE_B] * math.log(ratio1) + theta[P_RAISE_C] * market
            p_year = 1.0 / (1.0 + math.exp(-logit))
            p_step = 1.0 - (1.0 - p_year) ** dt
            if u_raise < p_step:
                size = min(theta[P_RAISE_MULTIPLE] * run_rate1, theta[P_RAISE_CAP])
                cash += size
                raised_cont += size
                n_raises += 1
                last_raise = t1

        # Credit line: drawn below the floor, repaid above it.
        if cash < min_cash and credit < theta[P_CREDIT_LIMIT]:
            draw = min(theta[P_CREDIT_LIMIT] - credit, min_cash - cash)
            cash += draw
            credit += draw
        elif cash > min_cash and credit > 0.0:
            repay = min(credit, cash - min_cash)
            cash -= repay
            credit -= repay
        credit_max = max(credit_max, credit)

        # Shortfall: cash is not reset, so the gap measures the capital that was missing.
        lowest = min(lowest, cash)
        if cash < min_cash:
            if first_sf < 0.0:
                first_sf = k
            gap = max(gap, min_cash - cash)

        annual[A_REV, y] += rev
        annual[A_COGS, y] += cogs
        annual[A_FCF, y] += fcf
        annual[A_COMPUTE, y] += cogs + training
        annual[A_CASH, y] = cash
        if steps.shape[0] > 0:
            steps[k, T_REV] = rev / dt
            steps[k, T_GM] = 1.0 - cogs / rev if rev > 0.0 else math.nan
            steps[k, T_FCF] = fcf / dt
            steps[k, T_CASH] = cash
        j += 1
        if j == spy:
            j = 0
            y += 1

    scalars[S_CASH_END] = cash
    scalars[S_LOWEST_CASH] = lowest
    scalars[S_FUNDING_GAP] = gap
    scalars[S_FIRST_SHORTFALL] = first_sf
    scalars[S_RAISED_SCHEDULED] = raised_sched
    scalars[S_RAISED_CONTINGENT] = raised_cont
    scalars[S_CREDIT_MAX] = credit_max
    scalars[S_CREDIT_END] = credit
    scalars[S_N_RAISES] = n_raises


@njit(**_jit)
def launch_step(seg, s, start, t1, eps, bridge, n_comp, when_comp, jump_comp):
    """Revenue of segment ``s`` in the step where it launches (from ``start`` to ``t1``); updates its rate.

    The general form of the loop body in ``simulate_path``, for a partial step.
    """
    tau = t1 - start
    kappa = seg[s, SG_KAPPA]
    sig = seg[s, SG_SIGMA]
    amp = seg[s, SG_AMP]
    decay_start = math.exp(-kappa * start)
    drift = seg[s, SG_GINF] * tau + amp * (decay_start - math.exp(-kappa * t1)) / kappa
    d = drift - 0.5 * sig * sig * tau + sig * math.sqrt(tau) * eps
    jump = n_comp * seg[s, SG_EXPOSURE] * jump_comp
    if n_comp > 0:
        ramp = ramp_integral(d, 0.0, when_comp) + math.exp(jump) * ramp_integral(d, when_comp, 1.0)
    else:
        ramp = log_mean_factor(d)
    curvature = kappa * amp * math.exp(-kappa * (start + 0.5 * tau))
    wiggle = exp_small(sig * math.sqrt(tau / 12.0) * bridge + sig * sig * tau / 24.0)
    r0 = seg[s, SG_RATE]
    seg[s, SG_RATE] = r0 * math.exp(d + jump)
    return tau * r0 * ramp * (1.0 + curvature * tau * tau / 12.0) * wiggle


@njit(**_jit)
def simulate_block(seed, path_start, antithetic, spy, n_years, tables, drawn_slot, z_min, z_step, chol_param, chol_first,
                   seg_launch, share, tc_plan, committed, plan_rate, price_level, ev_start, ev_end, ev_prob,
                   ev_tranches, ev_period, ev_gamma, max_raises, initial_burn, chol_shock,
                   theta_out, annual, scalars):
    """Simulate paths ``path_start .. path_start + n - 1`` (n = ``theta_out.shape[0]``) in parallel.

    theta_out : ndarray(float64, (n, n_drawn)); annual : ndarray(float64, (n, len(ANNUAL_VARS), n_years));
    scalars : ndarray(float64, (n, len(SCALAR_VARS))). Row i holds path ``path_start + i``.
    """
    no_steps = np.empty((theta_out.shape[0], 0, len(STEP_VARS)))  # per-step values not wanted
    trace_block(seed, path_start, antithetic, spy, n_years, tables, drawn_slot, z_min, z_step, chol_param,
                chol_first, seg_launch, share, tc_plan, committed, plan_rate, price_level, ev_start, ev_end,
                ev_prob, ev_tranches, ev_period, ev_gamma, max_raises, initial_burn, chol_shock,
                theta_out, annual, scalars, no_steps)


@njit(parallel=True, **_jit)
def trace_block(seed, path_start, antithetic, spy, n_years, tables, drawn_slot, z_min, z_step, chol_param, chol_first,
                seg_launch, share, tc_plan, committed, plan_rate, price_level, ev_start, ev_end, ev_prob,
                ev_tranches, ev_period, ev_gamma, max_raises, initial_burn, chol_shock,
                theta_out, annual, scalars, steps):
    """Simulate paths ``path_start ..`` in parallel, recording every step in ``steps``
    (n, n_years * spy, len(STEP_VARS)); a second axis of length 0 records nothing (``simulate_block``).
    """
    n = theta_out.shape[0]
    n_blocks = min(n, 64 * 8)
    n_par = tables.shape[0]
    n_drawn = chol_param.shape[0]
    n_seg = seg_launch.shape[0]
    n_ev = ev_start.shape[0]
    n_ch = chol_shock.shape[0]
    for b in prange(n_blocks):
        theta = np.empty(n_par)
        z = np.empty(n_drawn)
        zc = np.empty(n_drawn)
        eps = np.empty(n_ch)
        epsc = np.empty(n_ch)
        bridge = np.empty(n_seg)
        seg = np.empty((n_seg, SEG_SCRATCH))
        ring = np.empty(spy)
        ev_time = np.empty(n_ev)
        ev_u = np.empty(n_ev)
        ev_state = np.empty(n_ev, np.int64)
        ev_paid = np.empty(n_ev, np.int64)
        for i in range(b * n // n_blocks, (b + 1) * n // n_blocks):
            simulate_path(seed, path_start + i, antithetic, spy, n_years, tables, drawn_slot, z_min, z_step, chol_param, chol_first,
                          seg_launch, share, tc_plan, committed, plan_rate, price_level, ev_start, ev_end, ev_prob,
                          ev_tranches, ev_period, ev_gamma, max_raises, initial_burn, chol_shock,
                          theta, z, zc, eps, epsc, bridge, seg, ring, ev_time, ev_u, ev_state, ev_paid,
                          theta_out[i], annual[i], scalars[i], steps[i])


@njit(**_jit)
def first_broken_path(theta, annual, scalars, cash_col, cash_value):
    """(row, what, residual) of the first path that breaks an invariant, or (-1, 0, 0.0): ``what`` is 1, 2
    or 3 for a non-finite value in ``theta``, ``annual`` or ``scalars``, 4 for the cash identity (cash at
    the end = initial cash + sum of FCF + funding raised + credit outstanding, to 1e-9 of the flows'
    scale). The initial cash is ``theta[:, cash_col]``, or ``cash_value`` where ``cash_col`` < 0."""
    for i in range(theta.shape[0]):
        for what, arr in ((1, theta[i].ravel()), (2, annual[i].ravel()), (3, scalars[i].ravel())):
            for x in arr:
                if not math.isfinite(x):
                    return i, what, 0.0
        cash0 = theta[i, cash_col] if cash_col >= 0 else cash_value
        fcf = 0.0
        revenue = 0.0
        for y in range(annual.shape[2]):
            fcf += annual[i, A_FCF, y]
            revenue += abs(annual[i, A_REV, y])
        inflows = fcf + scalars[i, S_RAISED_SCHEDULED] + scalars[i, S_RAISED_CONTINGENT] + scalars[i, S_CREDIT_END]
        residual = abs(scalars[i, S_CASH_END] - cash0 - inflows)
        if residual > 1e-9 * (1.0 + abs(cash0) + revenue + abs(inflows)):
            return i, 4, residual
    return -1, 0, 0.0
