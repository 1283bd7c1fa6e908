"""A slow, plainly written per-path implementation of the model, for testing the kernel.

Plain Python floats and ints, one path at a time, every step spelt out and recorded, so that
each line can be checked against docs/model.md by eye.  It consumes random numbers in the same
order as the kernel, from its own implementation of the same counter-based generator, so the
two must agree to rounding.  ``simulate_path`` also returns the step-by-step trace.
"""

from __future__ import annotations

import math

import numpy as np

from .layout import FORM_EXP, FORM_TABLE, GLOBAL_PARAMS, N_GLOBAL, SEGMENT_PARAMS, SEGMENT_WIDTH
from .model import ModelInputs
from .rng import ZIG_F, ZIG_X

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class Stream:
    """The random numbers of one path: SplitMix64 keyed by (seed, path_id).

    ``mirror`` gives an antithetic partner's numbers: normals negated, uniforms 1 - u.
    """

    def __init__(self, seed: int, path_id: int, mirror: bool = False):
        self.state = mix64((mix64(seed ^ 0x5DEECE66D2B7E151) + path_id * GOLDEN) & MASK)
        self.mirror = mirror

    def draw(self) -> float:
        """A model uniform (mirrored for a partner)."""
        u = self.uniform()
        return 1.0 - u if self.mirror else u

    def bits53(self) -> int:
        self.state = (self.state + GOLDEN) & MASK
        return mix64(self.state) >> 11

    def uniform(self) -> float:
        return self.bits53() / 2.0**53

    def normal(self) -> float:
        """Ziggurat (Marsaglia & Tsang), as ``rng.next_normal``: layer, sign, position from one draw."""
        while True:
            self.state = (self.state + GOLDEN) & MASK
            bits = mix64(self.state)
            layer, sign = bits & 255, 1.0 if (bits >> 8) & 1 else -1.0
            x = (bits >> 11) / 2.0**53 * ZIG_X[layer]
            if x < ZIG_X[layer + 1]:
                return sign * x
            if layer == 0:  # tail beyond r
                while True:
                    t = -math.log1p(-self.uniform()) / ZIG_X[1]
                    if -2.0 * math.log1p(-self.uniform()) > t * t:
                        return sign * (ZIG_X[1] + t)
            f_low, f_high = ZIG_F[layer + 1], ZIG_F[layer]
            if f_low + self.uniform() * (f_high - f_low) < math.exp(-x * x / 2):
                return sign * x

    def normals(self, n: int) -> list[float]:
        """Model normals (negated for a partner)."""
        return [-self.normal() if self.mirror else self.normal() for _ in range(n)]


def lower_times(chol: np.ndarray, z: list[float]) -> list[float]:
    return [sum(chol[i][j] * z[j] for j in range(i + 1)) for i in range(len(z))]


def quantile(table: np.ndarray, z: float, z_min: float, z_step: float) -> float:
    pos = (z - z_min) / z_step
    last = len(table) - 1
    if pos <= 0:
        return float(table[0])
    if pos >= last:
        return float(table[last])
    i = int(pos)
    return float(table[i] + (pos - i) * (table[i + 1] - table[i]))


def parameter(m: ModelInputs, k: int, z: float) -> float:
    """Parameter k at normal score z (clamped to the tables' grid): loc + scale z for a normal, its exp for a
    lognormal, its quantile table otherwise."""
    if m.form[k] == FORM_TABLE:
        return quantile(m.tables[k], z, m.z_min, m.z_step)
    z_max = m.z_min + m.z_step * (m.tables.shape[1] - 1)
    x = m.loc_scale[k, 0] + m.loc_scale[k, 1] * min(max(z, m.z_min), z_max)
    return math.exp(x) if m.form[k] == FORM_EXP else x


def poisson(u: float, mean: float) -> tuple[int, float]:
    """Smallest k with P(N <= k) >= u, N ~ Poisson(mean); and where u fell inside P(N = k), in [0, 1]."""
    k, p = 0, math.exp(-mean)
    cdf = p
    while u > cdf and k < 1000:
        k += 1
        p *= mean / k
        cdf += p
    return k, (u - (cdf - p)) / p if p > 0 else 0.5


def integral_exp(d: float, a: float, b: float) -> float:
    """Integral of exp(d s) ds from a to b."""
    if abs(d * (b - a)) < 1e-12:
        return math.exp(d * a) * (b - a) * (1 + d * (b - a) / 2)
    return (math.exp(d * b) - math.exp(d * a)) / d


def exp_small(w: float) -> float:
    """exp(w), by its Taylor series to w^7 where |w| < 0.25 (as the kernel: relative error < 7e-10)."""
    if abs(w) < 0.25:
        return sum(w**k / math.factorial(k) for k in range(8))
    return math.exp(w)


def step_revenue(m: ModelInputs, segments: list[dict], run_rate: list[float], eps: list[float], bridge: list[float],
                 competition: int, when_comp: float, severity: float, t0: float, t1: float) -> float:
    """The segments' revenue over the step t0 .. t1; ``run_rate`` is advanced to t1 in place."""
    revenue = 0.0
    for s, seg in enumerate(segments):
        g0, ginf, half_life = seg["growth_initial"], seg["growth_long_run"], seg["half_life"]
        sigma, exposure = seg["sigma"], seg["competition_exposure"]
        if m.seg_launch[s] >= t1:
            continue
        start = max(t0, m.seg_launch[s])
        tau = t1 - start
        kappa = math.log(2) / half_life
        growth = ginf * tau + (g0 - ginf) * (math.exp(-kappa * start) - math.exp(-kappa * t1)) / kappa
        curvature = kappa * (g0 - ginf) * math.exp(-kappa * (start + tau / 2))  # -g' at the step's middle
        if m.seg_capped[s] and growth > 0:
            # model v2: dR/dt = g R (1 - R / ceiling) while growth is positive, solved exactly over the step
            # with G = the integral of g; the curvature of ln R from rho = R / ceiling at the step's start.
            rho = run_rate[s] / seg["ceiling"]
            curvature = (1 - rho) * (curvature + (growth / tau) ** 2 * rho)
            growth = growth - math.log1p(rho * math.expm1(growth))
        x0 = math.log(run_rate[s])
        x1 = x0 + growth - sigma**2 / 2 * tau + sigma * math.sqrt(tau) * eps[s]
        d = x1 - x0
        # ln R along the step's chord, in step-fraction units; a shock cuts it from its time on.
        jump = competition * exposure * math.log(1 - severity)
        when = when_comp if competition else 1.0
        along_chord = integral_exp(d, 0, when) + math.exp(jump) * integral_exp(d, when, 1)
        bridge_average = sigma * math.sqrt(tau / 12) * bridge[s] + sigma**2 * tau / 24
        revenue += tau * run_rate[s] * along_chord * (1 + curvature * tau**2 / 12) * exp_small(bridge_average)
        run_rate[s] = math.exp(x1 + jump)
    return revenue


def scheduled_raises(m: ModelInputs, events: list[dict], amounts: list[float], ratio_end: float, t1: float,
                     cash: float, raised_sched: float) -> tuple[float, float]:
    """Scheduled raises that close by t1 and the tranches that fall due: (cash, raised_sched) after them."""
    for e, ev in enumerate(events):
        if ev["status"] == "pending" and ev["time"] < t1:
            p = m.ev_prob[e] * (min(1.0, ratio_end ** m.ev_gamma[e]) if m.ev_gamma[e] > 0 else 1.0)
            ev["status"] = "closed" if ev["u"] < p else "failed"
        while ev["status"] == "closed" and ev["paid"] < m.ev_tranches[e] \
                and ev["time"] + ev["paid"] * m.ev_period[e] < t1:
            cash += amounts[e] / m.ev_tranches[e]
            raised_sched += amounts[e] / m.ev_tranches[e]
            ev["paid"] += 1
    return cash, raised_sched


def draw_parameters(m: ModelInputs, rng: Stream) -> list[float]:
    """Every parameter in kernel order: drawn ones from correlated normal scores, fixed ones from their table."""
    zc = lower_times(m.chol_param, rng.normals(m.chol_param.shape[0]))
    return [parameter(m, k, zc[d]) if d >= 0 else float(m.tables[k][0]) for k, d in enumerate(m.drawn_slot)]


def draw_events(m: ModelInputs, rng: Stream) -> list[dict]:
    """Each scheduled raise's closing time within its window and its closing draw."""
    events = []
    for e in range(len(m.ev_start)):
        when = m.ev_start[e] + rng.draw() * (m.ev_end[e] - m.ev_start[e])
        events.append({"time": when, "u": rng.draw(), "status": "pending", "paid": 0})
    return events


def credit_line(cash: float, credit: float, min_cash: float, credit_limit: float) -> tuple[float, float]:
    """(cash, credit) after the credit line is drawn below the cash floor or repaid above it."""
    if cash < min_cash and credit < credit_limit:
        draw = min(credit_limit - credit, min_cash - cash)
        cash, credit = cash + draw, credit + draw
    elif cash > min_cash and credit > 0:
        repay = min(credit, cash - min_cash)
        cash, credit = cash - repay, credit - repay
    return cash, credit


def simulate_path(m: ModelInputs, seed: int, path_id: int) -> dict:
    """One path: drawn parameters, yearly totals, end-of-run figures and the per-step trace."""
    mirror = m.antithetic and path_id % 2 == 1
    rng = Stream(seed, path_id - 1 if mirror else path_id, mirror)
    n_seg = len(m.seg_launch)

    theta = draw_parameters(m, rng)
    p = dict(zip(GLOBAL_PARAMS, theta[:N_GLOBAL]))  # by their config keys
    lam_comp, severity = p["competition.intensity"], p["competition.severity"]
    gm0 = p["compute.gross_margin_0"]
    lam_supply, supply_size = p["compute.supply_shock_intensity"], p["compute.supply_shock_size"]
    mu_p, sig_p = p["compute.price_drift"], p["compute.price_sigma"]
    mu_u, sig_u = p["compute.usage_drift"], p["compute.usage_sigma"]
    opex_base, opex_growth, opex_ratio = p["costs.opex_base"], p["costs.opex_growth"], p["costs.opex_revenue_ratio"]
    r_cash = p["costs.cash_interest"]
    beta = p["training.revenue_elasticity"]
    half_life_j, resale = p["compute.supply_shock_half_life"], p["compute.resale"]
    runway_floor, cut_factor = p["training.runway_floor"], p["training.cut_factor"]
    initial_cash, min_cash = p["funding.initial_cash"], p["funding.min_cash"]
    lookahead, cooldown = p["funding.contingent.lookahead"], p["funding.contingent.cooldown"]
    a, b = p["funding.contingent.intercept"], p["funding.contingent.revenue_slope"]
    c = p["funding.contingent.market_slope"]
    multiple, cap = p["funding.contingent.size_multiple"], p["funding.contingent.size_cap"]
    credit_limit, phi = p["funding.credit.limit"], p["market.persistence"]
    distress_factor, distress_size = p["funding.contingent.distress_factor"], p["funding.contingent.distress_size"]
    distress_limit, credit_rate = p["funding.contingent.distress_limit"], p["funding.credit.rate"]
    segments = [dict(zip(SEGMENT_PARAMS, theta[N_GLOBAL + SEGMENT_WIDTH * s: N_GLOBAL + SEGMENT_WIDTH * (s + 1)]))
                for s in range(n_seg)]
    amounts = theta[N_GLOBAL + SEGMENT_WIDTH * n_seg:]

    events = draw_events(m, rng)

    dt = 1.0 / m.spy
    run_rate = [seg["run_rate"] for seg in segments]
    trailing_fcf = [-m.initial_burn * dt] * m.spy
    log_price = log_usage = market = 0.0  # log_price: the trend's (model v2), without supply shocks
    jump_dev = 0.0  # J, the supply shocks' deviation of ln P from its trend, fading with half-life h_J
    cash, credit, credit_max = initial_cash, 0.0, 0.0
    raised_sched = raised_cont = 0.0
    n_raises, last_raise = 0, -1e300
    survival = False
    lowest, gap, first_sf = math.inf, 0.0, None
    years = {v: [0.0] * m.n_years for v in ("revenue", "cogs", "fcf", "cash", "compute_spend", "compute_units",
                                            "contract_spend", "spot_spend", "idle_compute", "compute_resale",
                                            "utilisation")}
    trace = []

    for k in range(m.n_years * m.spy):
        y, t0, t1 = k // m.spy, k * dt, k * dt + dt
        cash_start, credit_start, sched_start = cash, credit, raised_sched  # what the step's trace explains
        burn = max(0.0, -sum(trailing_fcf))
        # The runway rule or survival mode (model v2), not both multiplied.
        cut = cut_factor if (burn > 0 and cash < runway_floor * burn) or survival else 1.0
        live_rate = sum(r for r, when in zip(run_rate, m.seg_launch) if when <= t0)
        ratio_start = max(live_rate / m.plan_rate[k], 1e-9)

        eps = lower_times(m.chol_shock, rng.normals(m.chol_shock.shape[0]))
        bridge = lower_times(m.chol_shock[:n_seg, :n_seg], rng.normals(n_seg))
        competition, when_comp = poisson(rng.draw(), lam_comp * dt)
        supply_shocks, when_supply = poisson(rng.draw(), lam_supply * dt)

        revenue = step_revenue(m, segments, run_rate, eps, bridge, competition, when_comp, severity, t0, t1)
        live_rate_end = sum(r for r, when in zip(run_rate, m.seg_launch) if when < t1)

        lp0, lu0 = log_price, log_usage
        log_price += (mu_p - sig_p**2 / 2) * dt + sig_p * math.sqrt(dt) * eps[n_seg]
        # The step's average price: the trend's log-midpoint, the fading deviation at mid-step, a new supply
        # shock's jump from its time on, the config's dated shocks.
        price = math.exp((lp0 + log_price) / 2 + jump_dev * 2 ** (-dt / (2 * half_life_j)))
        if supply_shocks:
            price *= when_supply + (1 - when_supply) * (1 + supply_size) ** supply_shocks
        jump_dev = jump_dev * 2 ** (-dt / half_life_j) + supply_shocks * math.log(1 + supply_size)
        price *= m.price_level[k]
        log_usage += (mu_u - sig_u**2 / 2) * dt + sig_u * math.sqrt(dt) * eps[n_seg + 1]

        # Compute (model v2), in units over the step: demand, contracted capacity, then what is paid.
        units_inf = (1 - gm0) * math.exp((lu0 + log_usage) / 2) * revenue
        units_tr = dt * m.tc_plan[y] * ratio_start**beta * cut
        demand = units_inf + units_tr
        capacity = dt * m.capacity[y]
        util = min(1.0, demand / capacity) if capacity > 0 else 1.0
        used = util * dt * m.contract_amount[y]
        idle = (1 - util) * dt * m.contract_top[y]
        spot = price * max(0.0, demand - capacity)
        resold = resale * price * max(0.0, capacity - demand)
        cogs = units_inf / demand * (used + spot) if demand > 0 else 0.0
        training = units_tr / demand * (used + spot) if demand > 0 else 0.0
        compute = used + idle + spot - resold

        if opex_growth != 0:
            opex = opex_base * (math.exp(opex_growth * t1) - math.exp(opex_growth * t0)) / opex_growth
        else:
            opex = opex_base * dt
        opex += opex_ratio * revenue
        interest = r_cash * max(cash, 0.0) * dt
        credit_interest = credit_rate * credit * dt  # on the credit drawn at the step's start (model v2)
        fcf = revenue - m.share[y] * revenue - compute - opex + interest - credit_interest
        cash += fcf
        trailing_fcf = trailing_fcf[1:] + [fcf]
        market = phi**dt * market + math.sqrt(1 - phi ** (2 * dt)) * eps[n_seg + 2]
        ratio_end = max(live_rate_end / m.plan_rate[k + 1], 1e-9)

        cash, raised_sched = scheduled_raises(m, events, amounts, ratio_end, t1, cash, raised_sched)

        burn_end = max(0.0, -sum(trailing_fcf))
        cash_at_raise, raised_now = cash, 0.0  # the cash a contingent raise is decided on (before the credit line)
        u = rng.draw()  # drawn every step, used or not
        if n_raises < m.max_raises and t1 - last_raise >= cooldown - 1e-9 and cash < min_cash + lookahead * burn_end:
            # A yearly intensity (model v2); under the floor on distress terms, none under -distress_limit.
            intensity = 1 / (1 + math.exp(-(a + b * math.log(ratio_end) + c * market)))
            size_factor = 1.0
            if cash < min_cash:
                intensity *= distress_factor
                size_factor = distress_size
            if cash < -distress_limit:
                intensity = 0.0
            if u < 1 - math.exp(-intensity * dt):
                size = min(multiple * live_rate_end, cap) * size_factor
                cash += size
                raised_cont += size
                raised_now = size
                n_raises += 1
                last_raise = t1

        cash, credit = credit_line(cash, credit, min_cash, credit_limit)
        credit_max = max(credit_max, credit)

        lowest = min(lowest, cash)
        if cash < min_cash:
            first_sf = k if first_sf is None else first_sf
            gap = max(gap, min_cash - cash)
        # Survival mode: on at a step end in shortfall, off at the first with cash >= min_cash + lookahead x burn.
        if cash < min_cash:
            survival = True
        elif cash >= min_cash + lookahead * max(0.0, -sum(trailing_fcf)):
            survival = False
        years["revenue"][y] += revenue
        years["cogs"][y] += cogs
        years["fcf"][y] += fcf
        years["compute_spend"][y] += compute
        years["compute_units"][y] += demand
        years["contract_spend"][y] += used
        years["spot_spend"][y] += spot
        years["idle_compute"][y] += idle
        years["compute_resale"][y] += resold
        years["utilisation"][y] += util * dt
        years["cash"][y] = cash
        trace.append(dict(step=k, t_end=t1, revenue=revenue, run_rate=live_rate_end, cogs=cogs, opex=opex,
                          training=training, idle=idle, spot=spot, resale=resold, used=used, utilisation=util,
                          units=demand, interest=interest, fcf=fcf, price=math.exp(log_price + jump_dev),
                          usage=math.exp(log_usage), market=market, cut=cut, cash=cash, credit=credit,
                          credit_interest=credit_interest, survival=survival, cash_at_raise=cash_at_raise,
                          cash_start=cash_start, raised_scheduled=raised_sched - sched_start,
                          raised_contingent=raised_now, credit_change=credit - credit_start,
                          competition=competition, supply_shocks=supply_shocks))

    return dict(
        theta=[theta[k] for k, d in sorted(enumerate(m.drawn_slot), key=lambda kd: kd[1]) if d >= 0],
        annual=years,
        scalars=dict(cash_end=cash, lowest_cash=lowest, funding_gap=gap,
                     first_shortfall_step=-1.0 if first_sf is None else float(first_sf),
                     raised_scheduled=raised_sched, raised_contingent=raised_cont, credit_drawn_max=credit_max,
                     credit_outstanding_end=credit, n_raises=float(n_raises)),
        trace=trace,
    )
