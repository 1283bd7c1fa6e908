"""The numba kernel: docs/model.md-§6 for a block of paths, from one tuple of inputs (``model.ModelInputs``).

Paths are simulated ``LANES`` at a time (a tile of ``simulate_tiles``): every per-path quantity is a row of a (quantity,
lane) array and the step's arithmetic runs in loops over lanes that LLVM compiles to SIMD, with branch-free
``exp_lanes`` and ``log_lanes`` where libm would not vectorise. What is rare (the ziggurat's rejections,
events, raises) runs on the lanes that ``list_lanes`` finds from bit masks. Each lane's random numbers are
its path's stream (``simulator.rng``), advanced exactly as a path-by-path kernel would advance it.

The tile runs in phases, each a function inlined into it (so the compiled loop is one piece): streams,
parameters, scheduled raises' draws, per-path constants; then every step: the ratio to plan, shocks, revenue,
costs, funding, credit; outputs at each year's end and at the last step. The layout of inputs, outputs and
scratch rows is in ``simulator.layout``; this module re-exports it, and the helpers the kernel is built from, for
callers that read them here.
"""

from __future__ import annotations

import contextlib
import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from .checks import broken_invariant, cash_identity, first_broken_path  # noqa: F401  (re-exported)
from .draws import closed_form_lanes, correlate_lanes, interp_lanes, poisson_count, poisson_lanes  # noqa: F401
from .fastmath import (  # noqa: F401
    RAMP_RANGE,
    SMALL_RANGE,
    exp_lanes,
    exp_small,
    exp_taylor,
    fmax,
    fmin,
    horner,
    log1p_lanes,
    log_lanes,
    ramp_lanes,
)
from .intrinsics import bits_as_float, float_as_bits, fma, opaque, prefetch  # noqa: F401
from .jit import jit
from .lanes import list_lanes, whole_vectors
from .layout import *  # noqa: F403  (the kernel reads the layout's indices; its callers read them here)
from .rng import (  # noqa: F401
    GOLDEN,
    ZIG_F,
    ZIG_R,
    ZIG_X,
    lane_uniform,
    mix64,
    next_normal,
    next_uniform,
    normal_rejected,
    normals_lanes,
    path_key,
    uniforms_lanes,
    ziggurat_parts,
)


# ------------------------------------------------------------------ entry points
def simulate_block(seed, path_start, inputs, theta_out, annual, scalars):
    """Simulate paths ``path_start .. path_start + n - 1`` (n = ``theta_out.shape[0]``) on numba's thread count.

    inputs : ``model.ModelInputs``; column j of theta_out holds parameter ``inputs.theta_params[j]`` (kernel order):
    every drawn one, or those a run needs when it keeps no rows (``ModelInputs.keeping``);
    theta_out : ndarray(float64, (n, len(inputs.theta_params))); annual : ndarray(float64, (n, len(ANNUAL_VARS),
    n_years)); scalars : ndarray(float64, (n, len(SCALAR_VARS))). Row i holds path ``path_start + i``.
    """
    no_steps = np.empty((theta_out.shape[0], 0, len(STEP_VARS)))  # per-step values not wanted
    trace_block(seed, path_start, inputs, theta_out, annual, scalars, no_steps)


def trace_block(seed, path_start, inputs, theta_out, annual, scalars, steps):
    """Simulate paths ``path_start ..`` on numba's thread count (``numba.set_num_threads``), recording their first
    ``steps.shape[1]`` steps in ``steps`` (n, T, len(STEP_VARS)), T <= n_years * spy: every step for the report's
    per-step bands, the steps of the reported figures for a posterior run's weights, none (T = 0) for
    ``simulate_block``.

    Plain Python over one compiled function, ``simulate_tiles``, run on a contiguous share of the tiles in each
    thread (it releases the GIL). Not a ``prange`` loop: numba compiles a parallel loop's body into a function of
    its own and links it into its caller, where the tile's code was optimised and emitted once more each time
    (trace_block and simulate_block took 18 s of a 126 s cold compile); starting a few threads costs ~0.1 ms a
    call, against ~30 ms for a chunk of paths.
    """
    if steps.shape[1] > inputs.n_years * inputs.spy:
        raise ValueError("steps has more steps than the simulation")
    if theta_out.shape[1] != inputs.theta_params.shape[0]:
        raise ValueError("theta_out needs one column per entry of theta_params")
    n_tiles = (theta_out.shape[0] + LANES - 1) // LANES
    parts = max(1, min(numba.get_num_threads(), n_tiles))
    bounds = [n_tiles * k // parts for k in range(parts + 1)]

    def part(k):
        simulate_tiles(seed, path_start, inputs, theta_out, annual, scalars, steps, bounds[k], bounds[k + 1])

    with ThreadPoolExecutor(parts - 1) if parts > 1 else contextlib.nullcontext() as pool:
        others = [pool.submit(part, k) for k in range(1, parts)]
        part(0)
        for done in others:
            done.result()  # an error of another thread is raised here


# The tile's code is written out in the loop over tiles, not in a function numba inlines there: numba's inliner
# copies a callee's IR block by block, each block with a copy of every variable of the function, and the tile
# (564 blocks, 7,725 variables once its phases are inlined) took 17 s of a 39 s cold compile to copy.
@jit
def simulate_tiles(seed, path_start, inputs, theta_all, annual_all, scalars_all, steps_all, tile_lo, tile_hi):
    """Tiles ``tile_lo .. tile_hi - 1`` of ``trace_block``'s paths, one after another: tile t is rows
    ``t * LANES ..`` of the outputs, paths ``path_start + t * LANES ..``.

    A tile simulates paths ``first .. first + LANES - 1`` together and fills, for the first m of them
    (m = ``theta_out.shape[0]`` <= LANES), ``theta_out`` (m, len(inputs.theta_params): column j holds parameter
    ``inputs.theta_params[j]``, in kernel order), ``annual`` (m, V, Y) and
    ``scalars`` (m, S), and ``steps`` (m, T, len(STEP_VARS)) with the values of the first T steps (T may be 0):
    its rows of the outputs. Each path's numbers depend on its id alone, so the lanes beyond m change nothing.

    The arithmetic is arranged for speed (per-path constants hoisted, exponentials advanced by
    multiplication, lanes in SIMD loops); ``simulator.reference`` computes the same numbers, one path at
    a time, from the formulas as written.
    """
    n = theta_all.shape[0]
    for t in range(tile_lo, tile_hi):
        lo, hi = t * LANES, min(n, (t + 1) * LANES)
        first = path_start + lo
        theta_out, annual, scalars = theta_all[lo:hi], annual_all[lo:hi], scalars_all[lo:hi]
        steps = steps_all[lo:hi]
        m_out = theta_out.shape[0]
        m = LANES  # the lane loops' trip count, a constant (see LANES)
        spy = inputs.spy
        n_par = inputs.tables.shape[0]
        n_drawn = inputs.chol_param.shape[0]
        n_seg = inputs.seg_launch.shape[0]
        n_ev = inputs.ev_start.shape[0]
        n_ch = inputs.chol_shock.shape[0]
        # Scratch, allocated here for every tile, not once by the caller: LLVM then knows their rows' strides
        # (constants), so a lane loop over several rows needs fewer run-time checks that they do not overlap.
        states = np.empty(LANES, np.uint64)
        bits = np.empty(LANES, np.uint64)
        listed = np.empty(LANES, np.int64)
        shocked = np.empty(LANES, np.int64)
        supplied = np.empty(LANES, np.int64)
        dense = np.zeros(n_ch, np.int64)  # every row of the shock Cholesky starts at column 0
        lane = np.empty((LANE_SCRATCH, ROW))
        seg = np.empty((n_seg, SEG_SCRATCH, ROW))
        theta = np.empty((n_par, ROW))
        z = np.empty((n_drawn + 3, ROW))  # the last three rows for ``correlate_lanes``
        eps = np.empty((n_ch + n_seg + 3, ROW))
        z[n_drawn] = 0.0
        eps[n_ch + n_seg] = 0.0
        cols = np.empty(max(n_drawn, n_ch), np.int64)
        ring = np.empty((spy, ROW))
        ev_time = np.empty((n_ev, ROW))
        ev_u = np.empty((n_ev, ROW))
        ev_state = np.empty((n_ev, ROW), np.int64)
        ev_paid = np.empty((n_ev, ROW), np.int64)
        dt = 1.0 / spy
        n_traced = steps.shape[1]

        start_streams(seed, first, inputs.antithetic, states, lane, m)
        signs = lane[L_SIGN]
        draw_parameters(inputs, states, bits, listed, signs, z, cols, theta, lane, m)
        for i in range(m_out):  # path by path: a row of stores to one place is cheaper than a column of them
            for j in range(inputs.theta_params.shape[0]):
                theta_out[i, j] = theta[inputs.theta_params[j], i]
        draw_scheduled_raises(inputs, states, signs, ev_time, ev_u, ev_state, ev_paid, m)
        start_segments(inputs, seg, theta, dt, m)
        start_lanes(lane, ring, theta, inputs.initial_burn, dt, m)

        for k in range(inputs.n_years * spy):  # the hot loop
            # The year and the step within it, from k rather than counted: a counter that starts at 0 is typed as
            # the literal 0 first, and numba compiled each helper that takes it once more for that type.
            y, j = k // spy, k % spy
            t0 = k * dt
            t1 = t0 + dt
            ratio_to_plan(inputs, seg, lane, k, t0, dt, m)
            n_shocked, n_supply = draw_shocks(inputs, states, bits, listed, signs, lane, shocked, supplied, dense,
                                              eps, cols, m)
            revenue(inputs, seg, lane, eps, listed, shocked, n_shocked, t0, t1, dt, m)
            costs(inputs, lane, theta, eps, ring, supplied, n_supply, k, y, j, dt, m)
            credit_interest(lane, theta, ring, j, dt, m)
            if k < n_traced:  # a loop of its own: a branch inside the costs' loop costs every lane
                for i in range(m_out):
                    rev = lane[L_REV, i]
                    steps[i, k, T_REV] = rev / dt
                    steps[i, k, T_GM] = 1.0 - lane[L_COGS, i] / rev if rev > 0.0 else math.nan
                    steps[i, k, T_FCF] = ring[j, i] / dt
            scheduled_funding(inputs, lane, theta, ev_time, ev_u, ev_state, ev_paid, t0, t1, dt, m)
            contingent_funding(inputs, lane, theta, listed, t1, dt, m)
            credit_line(lane, theta, k, m)
            if k < n_traced:
                for i in range(m_out):
                    steps[i, k, T_CASH] = lane[L_CASH, i]
            if j == spy - 1:
                record_year(lane, annual, y, m_out)
        record_paths(lane, theta, scalars, m_out)


# ------------------------------------------------------------------ before the first step
@jit(inline="always")
def start_streams(seed, first, antithetic, states, lane, m):
    """Each lane's random-number stream (``states``) and its sign (row L_SIGN: -1 for a mirrored path)."""
    for i in range(m):
        # Antithetic pairs: path 2k+1 replays the stream of path 2k with every normal negated and every
        # uniform mirrored (u -> 1 - u). The ziggurat's rejections depend on |z| only, so the
        # partner's normals are exactly -z.
        mirror = antithetic and (first + i) % 2 == 1
        lane[L_SIGN, i] = -1.0 if mirror else 1.0
        states[i] = path_key(seed, first + i - 1 if mirror else first + i)


@jit(inline="always")
def draw_parameters(inputs, states, bits, listed, signs, z, cols, theta, lane, m):
    """theta[k, i] = parameter k of lane i: correlated normal scores (Gaussian copula) -> closed forms or quantile
    tables; a fixed parameter's value from its table's first entry."""
    n_drawn = inputs.chol_param.shape[0]
    tables, form, loc_scale, drawn_slot = inputs.tables, inputs.form, inputs.loc_scale, inputs.drawn_slot
    z_min, z_step = inputs.z_min, inputs.z_step
    n_par = tables.shape[0]
    z_max = z_min + z_step * (tables.shape[1] - 1)
    for d in range(n_drawn):
        normals_lanes(states, bits, listed, signs, z, d, m)
    correlate_lanes(inputs.chol_param, inputs.chol_first, z, 0, cols, n_drawn, m)
    for k in range(n_par):
        d = drawn_slot[k]
        if d < 0:  # a fixed value
            for i in range(m):
                theta[k, i] = tables[k, 0]
            continue
        if form[k] == FORM_TABLE:
            interp_lanes(tables[k], z[d], z_min, z_step, listed, lane[L_SCRATCH], theta[k], m)
        else:
            closed_form_lanes(form[k], loc_scale[k, 0], loc_scale[k, 1], z[d], z_min, z_max, theta[k], m)


@jit(inline="always")
def draw_scheduled_raises(inputs, states, signs, ev_time, ev_u, ev_state, ev_paid, m):
    """Each scheduled raise's closing time within its window and its closing draw, per lane."""
    ev_start, ev_end = inputs.ev_start, inputs.ev_end
    for e in range(ev_start.shape[0]):
        uniforms_lanes(states, signs, ev_time[e], m)
        for i in range(m):
            ev_time[e, i] = ev_start[e] + ev_time[e, i] * (ev_end[e] - ev_start[e])
        uniforms_lanes(states, signs, ev_u[e], m)
        for i in range(m):
            ev_state[e, i] = 0  # 0 pending, 1 closed, 2 failed
            ev_paid[e, i] = 0



@jit(inline="always")
def start_segments(inputs, seg, theta, dt, m):
    """Each segment's per-path constants and its initial run rate (SIMD loops)."""
    sqdt = math.sqrt(dt)
    for s in range(seg.shape[0]):
        base = N_GLOBAL + SEGMENT_WIDTH * s
        for i in range(m):
            kappa = math.log(2.0) / theta[base + SEG_HALF_LIFE, i]
            sig = theta[base + SEG_SIGMA, i]
            amp = theta[base + SEG_G0, i] - theta[base + SEG_GINF, i]
            seg[s, SG_RATE, i] = theta[base + SEG_RUN_RATE, i]
            seg[s, SG_DECAY, i] = 1.0                      # exp(-kappa t0), advanced every step
            decay_step = exp_lanes(-kappa * dt)
            seg[s, SG_DECAY_STEP, i] = decay_step
            seg[s, SG_KAPPA, i] = kappa
            seg[s, SG_AMP, i] = amp
            seg[s, SG_GINF, i] = theta[base + SEG_GINF, i]
            seg[s, SG_SIGMA, i] = sig
            seg[s, SG_DRIFT, i] = theta[base + SEG_GINF, i] * dt - 0.5 * sig * sig * dt
            seg[s, SG_AMP_STEP, i] = amp / kappa * (1.0 - decay_step)  # amp (e0 - e1) / kappa = e0 times this
            seg[s, SG_VOL, i] = sig * sqdt
            seg[s, SG_BRIDGE_SD, i] = sig * math.sqrt(dt / 12.0)
            seg[s, SG_BRIDGE_MEAN, i] = sig * sig * dt / 24.0
            seg[s, SG_CURV, i] = dt * (kappa * amp * dt * dt / 12.0 * exp_lanes(-kappa * 0.5 * dt))
            seg[s, SG_EXPOSURE, i] = theta[base + SEG_EXPOSURE, i]
            seg[s, SG_ITO, i] = 0.5 * sig * sig * dt
            ceiling = theta[base + SEG_CEILING, i]
            seg[s, SG_INV_CEILING, i] = 1.0 / ceiling if inputs.seg_capped[s] & (ceiling > 0.0) else 0.0


@jit(inline="always")
def start_lanes(lane, ring, theta, initial_burn, dt, m):
    """The per-path constants and initial state of the rows of ``lane`` and of the trailing cash flows' ring (SIMD
    loops; libm only for expm1 beyond ramp_lanes' range)."""
    sqdt = math.sqrt(dt)
    n_far = 0
    for i in range(m):
        lane[L_JUMP_COMP, i] = log1p_lanes(-theta[P_COMP_SEVERITY, i])
        lane[L_JUMP_SUPPLY, i] = log1p_lanes(theta[P_SUPPLY_SIZE, i])
        # Fixed opex over step k is O_0 e^{g t0} (e^{g dt} - 1) / g: a geometric sequence.
        g_dt = theta[P_OPEX_GROWTH, i] * dt
        n_far += abs(g_dt) >= RAMP_RANGE
        lane[L_OPEX_FIXED, i] = theta[P_OPEX_BASE, i] * dt * ramp_lanes(g_dt)
    for i in range(m if n_far else 0):  # opex growing or shrinking beyond ramp_lanes' range (e^2 in a step)
        g_dt = theta[P_OPEX_GROWTH, i] * dt
        if abs(g_dt) >= RAMP_RANGE:
            lane[L_OPEX_FIXED, i] = theta[P_OPEX_BASE, i] * dt * (math.expm1(g_dt) / g_dt)
    for i in range(m):
        lane[L_MEAN_COMP, i] = theta[P_COMP_INTENSITY, i] * dt
        lane[L_NONE_COMP, i] = exp_lanes(-lane[L_MEAN_COMP, i])
        lane[L_MEAN_SUPPLY, i] = theta[P_SUPPLY_INTENSITY, i] * dt
        lane[L_NONE_SUPPLY, i] = exp_lanes(-lane[L_MEAN_SUPPLY, i])
        phi = theta[P_MARKET_PHI, i]
        phi_dt = exp_lanes(dt * log_lanes(phi)) if phi > 0.0 else 0.0  # phi ** dt
        lane[L_PHI_DT, i] = phi_dt
        lane[L_MARKET_VOL, i] = math.sqrt(1.0 - phi_dt * phi_dt)
        s_p = theta[P_PRICE_SIGMA, i]
        s_u = theta[P_USAGE_SIGMA, i]
        lane[L_DRIFT_P, i] = (theta[P_PRICE_DRIFT, i] - 0.5 * s_p * s_p) * dt
        lane[L_VOL_P, i] = s_p * sqdt
        lane[L_DRIFT_U, i] = (theta[P_USAGE_DRIFT, i] - 0.5 * s_u * s_u) * dt
        lane[L_VOL_U, i] = s_u * sqdt
        lane[L_OPEX_STEP, i] = exp_lanes(theta[P_OPEX_GROWTH, i] * dt)
        # The supply shocks' price deviation fades with half-life h_J: its factor over a step and over half a step.
        j_rate = -math.log(2.0) * dt / theta[P_SUPPLY_HALF_LIFE, i]
        lane[L_J_DECAY, i] = exp_lanes(j_rate)
        lane[L_J_HALF, i] = exp_lanes(0.5 * j_rate)
        lane[L_C0, i] = 1.0 - theta[P_GM0, i]
        lane[L_CASH, i] = theta[P_INITIAL_CASH, i]
    for j in range(ring.shape[0]):
        for i in range(m):
            ring[j, i] = -initial_burn * dt
    for i in range(m):
        lane[L_RING_SUM, i] = -initial_burn
        lane[L_LN_P, i] = 0.0
        lane[L_LN_U, i] = 0.0
        lane[L_MARKET, i] = 0.0
        lane[L_CREDIT, i] = 0.0
        lane[L_CREDIT_MAX, i] = 0.0
        lane[L_RAISED_SCHED, i] = 0.0
        lane[L_RAISED_CONT, i] = 0.0
        lane[L_N_RAISES, i] = 0.0
        lane[L_LAST_RAISE, i] = -1e300
        lane[L_LOWEST, i] = 1e300
        lane[L_FIRST_SF, i] = -1.0
        lane[L_Y_REV, i] = 0.0
        lane[L_Y_COGS, i] = 0.0
        lane[L_Y_FCF, i] = 0.0
        lane[L_Y_COMPUTE, i] = 0.0
        lane[L_JUMP_DEV, i] = 0.0
        lane[L_SUPPLY_LIFT, i] = 1.0
        lane[L_SURVIVAL, i] = 0.0
        start_step(lane, theta, i)
    for r in range(L_Y_UNITS, L_Y_UTIL + 1):
        for i in range(m):
            lane[r, i] = 0.0


# ------------------------------------------------------------------ a step
@jit(inline="always")
def ratio_to_plan(inputs, seg, lane, k, t0, dt, m):
    """Revenue vs plan at the step's start (the other decisions, trailing burn and runway rule, ``start_step``
    took at the end of the step before). The row L_LOG_RATIO holds ln(launched segments' run rate / plan) at
    the last step's end, this step's start: the costs loop leaves it there. Summed afresh (L_RATIO0) at the
    first step, or where a segment launched exactly at the boundary (then the last step's sum left it out
    and this one counts it)."""
    fresh = k == 0
    for s in range(seg.shape[0]):
        fresh |= (inputs.seg_launch[s] <= t0) != (inputs.seg_launch[s] < (k - 1) * dt + dt)
    if fresh:
        for i in range(m):
            lane[L_RATIO0, i] = 0.0
        for s in range(seg.shape[0]):
            if inputs.seg_launch[s] <= t0:
                for i in range(m):
                    lane[L_RATIO0, i] += seg[s, SG_RATE, i]
        for i in range(m):
            lane[L_LOG_RATIO, i] = log_lanes(fmax(lane[L_RATIO0, i] / inputs.plan_rate[k], 1e-9))


@jit(inline="always")
def draw_shocks(inputs, states, bits, listed, signs, lane, shocked, supplied, dense, eps, cols, m):
    """Shocks of the step: the channels' increments, then for each segment the step's average of
    its Brownian bridge (so the revenue of a long step has the variance of the continuous model).
    Event counts are Poisson per step; a Bernoulli(1 - exp(-lambda dt)) per step is "count >= 1".
    The contingent raise's uniform is drawn every step, used or not, so two configs share every later
    random number (common random numbers). Returns the numbers of lanes with a competition shock
    (``shocked[:n_shocked]``) and with a supply shock (``supplied[:n_supply]``)."""
    chol_shock = inputs.chol_shock
    n_ch, n_seg = chol_shock.shape[0], inputs.seg_launch.shape[0]
    for c in range(n_ch + n_seg):
        normals_lanes(states, bits, listed, signs, eps, c, m)
    # The lanes with a competition shock (``shocked[:n_shocked]``) and with a supply shock (``supplied``).
    n_shocked = poisson_lanes(states, signs, lane, shocked, L_U_COMP, L_MEAN_COMP, L_NONE_COMP, L_N_COMP,
                              L_WHEN_COMP, m)
    n_supply = poisson_lanes(states, signs, lane, supplied, L_U_SUPPLY, L_MEAN_SUPPLY, L_NONE_SUPPLY, L_N_SUPPLY,
                             L_WHEN_SUPPLY, m)
    uniforms_lanes(states, signs, lane[L_U_RAISE], m)
    correlate_lanes(chol_shock, dense, eps, 0, cols, n_ch, m)  # the channels' shocks
    correlate_lanes(chol_shock, dense, eps, n_ch, cols, n_seg, m)  # the bridges' (rows n_ch + s)
    return n_shocked, n_supply


@jit(inline="always")
def revenue(inputs, seg, lane, eps, listed, shocked, n_shocked, t0, t1, dt, m):
    """Revenue (§3): each segment's over the step into row L_REV, its run rate at the step's end into row
    L_RUN_RATE1. The growth curve is integrated exactly; within the step ln R follows its chord plus curvature
    and bridge corrections, and a competition shock lands at its time."""
    seg_launch = inputs.seg_launch
    n_ch, n_seg = inputs.chol_shock.shape[0], seg_launch.shape[0]
    for s in range(n_seg):
        if seg_launch[s] >= t1:
            for i in range(m):
                seg[s, SG_DECAY, i] *= seg[s, SG_DECAY_STEP, i]
            continue
        n_steep = n_wide = 0
        capped = inputs.seg_capped[s]
        if seg_launch[s] > t0 and capped:  # a capped segment's launch step: as below, growth logistic
            start = seg_launch[s]
            tau = t1 - start
            sq_tau, sq_tau12 = math.sqrt(tau), math.sqrt(tau / 12.0)
            for i in range(m):  # SIMD, once a path
                seg[s, SG_DECAY, i] *= seg[s, SG_DECAY_STEP, i]
                kappa, sig, amp = seg[s, SG_KAPPA, i], seg[s, SG_SIGMA, i], seg[s, SG_AMP, i]
                decay = exp_lanes(-kappa * start) - exp_lanes(-kappa * t1)
                growth = seg[s, SG_GINF, i] * tau + amp * decay / kappa
                curvature = kappa * amp * exp_lanes(-kappa * (start + 0.5 * tau))
                growth, curvature = logistic_step(growth, curvature, seg[s, SG_RATE, i] * seg[s, SG_INV_CEILING, i],
                                                  tau, 1.0)
                d = growth - 0.5 * sig * sig * tau + sig * sq_tau * eps[s, i]
                n_steep += abs(d) >= RAMP_RANGE
                weight = tau * (1.0 + curvature * tau * tau / 12.0) * exp_small(
                    sig * sq_tau12 * eps[n_ch + s, i] + sig * sig * tau / 24.0)
                segment_step(seg, lane, s, i, d, ramp_lanes(d), weight)
        elif capped:
            for i in range(m):  # SIMD: the step as if no competition shock, growth logistic (model v2)
                e0 = seg[s, SG_DECAY, i]
                seg[s, SG_DECAY, i] = e0 * seg[s, SG_DECAY_STEP, i]
                growth = fma(seg[s, SG_AMP_STEP, i], e0, seg[s, SG_GINF, i] * dt)
                # SG_CURV e0 is -g' at the step's middle times dt^3 / 12 (curve_lift)
                growth, lift = logistic_step(growth, seg[s, SG_CURV, i] * e0,
                                             seg[s, SG_RATE, i] * seg[s, SG_INV_CEILING, i], dt, dt * dt * dt / 12.0)
                d = fma(seg[s, SG_VOL, i], eps[s, i], growth - seg[s, SG_ITO, i])
                n_steep += abs(d) >= RAMP_RANGE
                w = bridge_exponent(seg, s, i, eps[n_ch + s, i])
                wide = abs(w) >= SMALL_RANGE
                n_wide += wide
                lane[L_WIDE, i] = 1.0 if wide else 0.0
                lane[L_CURVE, i] = dt + lift
                segment_step(seg, lane, s, i, d, ramp_lanes(d), lane[L_CURVE, i] * exp_taylor(w))
        elif seg_launch[s] > t0:  # the segment launches in this step: a partial step from its launch to t1
            start = seg_launch[s]
            tau = t1 - start
            sq_tau, sq_tau12 = math.sqrt(tau), math.sqrt(tau / 12.0)
            for i in range(m):  # SIMD, once a path: the general form of the step below
                seg[s, SG_DECAY, i] *= seg[s, SG_DECAY_STEP, i]
                kappa, sig, amp = seg[s, SG_KAPPA, i], seg[s, SG_SIGMA, i], seg[s, SG_AMP, i]
                decay = exp_lanes(-kappa * start) - exp_lanes(-kappa * t1)
                d = (seg[s, SG_GINF, i] * tau + amp * decay / kappa - 0.5 * sig * sig * tau
                     + sig * sq_tau * eps[s, i])
                n_steep += abs(d) >= RAMP_RANGE
                curvature = kappa * amp * exp_lanes(-kappa * (start + 0.5 * tau))
                weight = tau * (1.0 + curvature * tau * tau / 12.0) * exp_small(
                    sig * sq_tau12 * eps[n_ch + s, i] + sig * sig * tau / 24.0)
                segment_step(seg, lane, s, i, d, ramp_lanes(d), weight)
        else:
            for i in range(m):  # SIMD: the step as if no competition shock
                e0 = seg[s, SG_DECAY, i]
                seg[s, SG_DECAY, i] = e0 * seg[s, SG_DECAY_STEP, i]
                d = fma(seg[s, SG_VOL, i], eps[s, i], fma(seg[s, SG_AMP_STEP, i], e0, seg[s, SG_DRIFT, i]))
                n_steep += abs(d) >= RAMP_RANGE
                w = bridge_exponent(seg, s, i, eps[n_ch + s, i])
                wide = abs(w) >= SMALL_RANGE
                n_wide += wide
                lane[L_WIDE, i] = 1.0 if wide else 0.0
                lane[L_CURVE, i] = curve_lift(seg, s, i, e0, dt)
                # exp_small(w) but for the wide lanes, below
                segment_step(seg, lane, s, i, d, ramp_lanes(d), lane[L_CURVE, i] * exp_taylor(w))
        for listed_k in range(list_lanes(lane[L_WIDE], m, listed) if n_wide else 0):  # exp_small's other
            i = listed[listed_k]                       # side, rare: as a select it cost every lane
            weight = lane[L_CURVE, i] * exp_lanes(bridge_exponent(seg, s, i, eps[n_ch + s, i]))
            segment_step(seg, lane, s, i, lane[L_D, i], ramp_lanes(lane[L_D, i]), weight)
        for i in range(m if n_steep else 0):  # growth beyond ramp_lanes' range (e^2 in a step): exactly
            d = lane[L_D, i]
            if abs(d) >= RAMP_RANGE:
                segment_step(seg, lane, s, i, d, math.expm1(d) / d, lane[L_WEIGHT, i])
        # Lanes with a competition shock this step: it lands at its time. Their inputs side by side (rows
        # L_SHOCK_*, by position in the list, padded to whole vectors), a SIMD loop, and the results back.
        n_vec = whole_vectors(n_shocked)
        for k_shocked in range(n_vec):
            i = shocked[min(k_shocked, n_shocked - 1)]
            lane[L_SHOCK_D, k_shocked] = lane[L_D, i]
            lane[L_SHOCK_WHEN, k_shocked] = lane[L_WHEN_COMP, i]
            lane[L_SHOCK_JUMP, k_shocked] = lane[L_N_COMP, i] * seg[s, SG_EXPOSURE, i] * lane[L_JUMP_COMP, i]
        for k_shocked in range(n_vec):
            lane[L_SHOCK_RAMP, k_shocked], lane[L_SHOCK_GROWTH, k_shocked] = shocked_ramp_lanes(
                lane[L_SHOCK_D, k_shocked], lane[L_SHOCK_WHEN, k_shocked], lane[L_SHOCK_JUMP, k_shocked])
        for k_shocked in range(n_shocked):
            i = shocked[k_shocked]
            ramp, growth = lane[L_SHOCK_RAMP, k_shocked], lane[L_SHOCK_GROWTH, k_shocked]
            if abs(lane[L_D, i]) >= RAMP_RANGE:
                ramp, growth = shocked_ramp(lane[L_D, i], lane[L_WHEN_COMP, i], lane[L_SHOCK_JUMP, k_shocked])
            r0 = seg[s, SG_RATE, i]
            lane[L_CONTRIB, i] = r0 * ramp * lane[L_WEIGHT, i]
            lane[L_R1, i] = r0 * growth
        for i in range(m):
            lane[L_REV, i] += lane[L_CONTRIB, i]
            seg[s, SG_RATE, i] = lane[L_R1, i]
            lane[L_RUN_RATE1, i] += lane[L_R1, i]


@jit(inline="always")
def costs(inputs, lane, theta, eps, ring, supplied, n_supply, k, y, j, dt, m):
    """Compute price and usage, compute demand, contracts and the spot market (model v2), other costs (§5) and
    the cash flow (§6) of the step. Costs use the step's average price and usage (log-midpoint). The price is
    exp(mid_p + J h) * level: J the supply shocks' deviation from the trend at the step's start, h its fading over
    half a step, level the config's dated shocks times a new supply shock's lift of the step's average (1 without
    one). Row j of ``ring`` takes the step's free cash flow."""
    n_seg = inputs.seg_launch.shape[0]  # eps rows n_seg, n_seg + 1, n_seg + 2: price, usage, market
    share, price_level, plan_rate = inputs.share, inputs.price_level, inputs.plan_rate
    for listed_k in range(n_supply):  # lanes with a supply shock: its jump lands at its time
        i = supplied[listed_k]
        when = lane[L_WHEN_SUPPLY, i]
        lane[L_SUPPLY_LIFT, i] = when + (1.0 - when) * exp_lanes(lane[L_N_SUPPLY, i] * lane[L_JUMP_SUPPLY, i])
    plan_spend = dt * inputs.tc_plan[y]
    # The year's contracts over a step: capacity in units, amounts and take-or-pay amounts in $B. Without
    # capacity the utilisation is 1 (u_floor) and nothing is paid under a contract.
    capacity = dt * inputs.capacity[y]
    inv_capacity = 1.0 / capacity if capacity > 0.0 else 0.0
    u_floor = 0.0 if capacity > 0.0 else 1.0
    amount = dt * inputs.contract_amount[y]
    top = dt * inputs.contract_top[y]
    for i in range(m):  # SIMD: price, compute, costs (§5) and cash flow (§6)
        rev = lane[L_REV, i]
        cash = lane[L_CASH, i]
        ln_p0 = lane[L_LN_P, i]
        ln_p = fma(lane[L_VOL_P, i], eps[n_seg, i], ln_p0 + lane[L_DRIFT_P, i])
        lane[L_LN_P, i] = ln_p
        j0 = lane[L_JUMP_DEV, i]
        lane[L_JUMP_DEV, i] = j0 * lane[L_J_DECAY, i]
        price = price_level[k] * lane[L_SUPPLY_LIFT, i] * exp_lanes(fma(j0, lane[L_J_HALF, i], 0.5 * (ln_p0 + ln_p)))
        ln_u0 = lane[L_LN_U, i]
        ln_u = fma(lane[L_VOL_U, i], eps[n_seg + 1, i], ln_u0 + lane[L_DRIFT_U, i])
        lane[L_LN_U, i] = ln_u
        units_inf = lane[L_C0, i] * exp_lanes(0.5 * (ln_u0 + ln_u)) * rev
        units_tr = plan_spend * exp_lanes(theta[P_ELASTICITY, i] * lane[L_LOG_RATIO, i]) * lane[L_CUT, i]
        demand = units_inf + units_tr
        util = fmax(u_floor, fmin(1.0, demand * inv_capacity))
        used = util * amount
        idle = (1.0 - util) * top
        spot = price * fmax(0.0, demand - capacity)
        resold = theta[P_RESALE, i] * price * fmax(0.0, capacity - demand)
        paid = used + spot
        cogs = units_inf / fmax(demand, 1e-300) * paid  # 0 without demand: then nothing is paid
        compute = paid + idle - resold
        opex = fma(theta[P_OPEX_RATIO, i], rev, lane[L_OPEX_FIXED, i])
        lane[L_OPEX_FIXED, i] *= lane[L_OPEX_STEP, i]
        interest = theta[P_CASH_INTEREST, i] * fmax(cash, 0.0) * dt
        fcf = fma(-share[y], rev, rev) - compute - opex + interest
        lane[L_CASH, i] = cash + fcf
        lane[L_RING_SUM, i] += fcf - ring[j, i]
        ring[j, i] = fcf
        lane[L_MARKET, i] = fma(lane[L_PHI_DT, i], lane[L_MARKET, i], lane[L_MARKET_VOL, i] * eps[n_seg + 2, i])
        lane[L_LOG_RATIO, i] = log_lanes(fmax(lane[L_RUN_RATE1, i] / plan_rate[k + 1], 1e-9))  # at the step's end
        lane[L_Y_REV, i] += rev
        lane[L_Y_COGS, i] += cogs
        lane[L_Y_FCF, i] += fcf
        lane[L_Y_COMPUTE, i] += compute
        lane[L_Y_UNITS, i] += demand
        lane[L_Y_CONTRACT, i] += used
        lane[L_Y_SPOT, i] += spot
        lane[L_Y_IDLE, i] += idle
        lane[L_Y_RESALE, i] += resold
        lane[L_Y_UTIL, i] += util * dt
        lane[L_COGS, i] = cogs
    for listed_k in range(n_supply):  # the supply shocks' jumps, now that the step's average is taken
        i = supplied[listed_k]
        lane[L_JUMP_DEV, i] += lane[L_N_SUPPLY, i] * lane[L_JUMP_SUPPLY, i]
        lane[L_SUPPLY_LIFT, i] = 1.0


@jit(inline="always")
def scheduled_funding(inputs, lane, theta, ev_time, ev_u, ev_state, ev_paid, t0, t1, dt, m):
    """Scheduled funding (§6), event by event in SIMD loops; an event is skipped in the steps before its
    window opens and after its last tranche can have been paid."""
    ev_start, ev_end, ev_tranches, ev_period = inputs.ev_start, inputs.ev_end, inputs.ev_tranches, inputs.ev_period
    ev0 = N_GLOBAL + SEGMENT_WIDTH * inputs.seg_launch.shape[0]  # theta's row of the first event's amount
    for e in range(ev_start.shape[0]):
        if ev_start[e] >= t1 or t0 > ev_end[e] + ev_tranches[e] * ev_period[e]:
            continue
        single = ev_tranches[e] == 1
        if t0 <= ev_end[e]:  # in its window: pending lanes whose time has come close, or fail
            gamma, prob = inputs.ev_gamma[e], inputs.ev_prob[e]
            if gamma > 0.0:  # the chance to close, prob min(1, ratio^gamma), of every lane
                for i in range(m):
                    lane[L_P_RAISE, i] = prob * fmin(1.0, exp_lanes(gamma * lane[L_LOG_RATIO, i]))
            else:
                for i in range(m):
                    lane[L_P_RAISE, i] = prob
            for i in range(m):  # SIMD over every lane: ~1/4 of them fall due in a step of the window
                due = (ev_state[e, i] == 0) & (ev_time[e, i] < t1)
                closes = due & (ev_u[e, i] < lane[L_P_RAISE, i])
                ev_state[e, i] = (1 if closes else 2) if due else ev_state[e, i]
                # A single tranche is paid at closing, as the loop below would (amount / 1 is the amount).
                amount = theta[ev0 + e, i] if closes & single else 0.0
                lane[L_CASH, i] += amount
                lane[L_RAISED_SCHED, i] += amount
                ev_paid[e, i] += 1 if closes & single else 0
        # Then a closed lane pays its next tranche if it has fallen due. Tranches a step or more apart fall
        # due at most one a step (the one before would have been due in an earlier step); closer ones
        # take passes until one pays nothing. A single tranche was paid above.
        one_pass = ev_period[e] > dt * (1.0 + 1e-9)
        n_paid = 0 if single else 1
        while n_paid:
            n_paid = 0
            for i in range(m):
                paid = ev_paid[e, i]
                pay = (ev_state[e, i] == 1) & (paid < ev_tranches[e]) & (ev_time[e, i] + paid * ev_period[e] < t1)
                amount = theta[ev0 + e, i] / ev_tranches[e] if pay else 0.0
                lane[L_CASH, i] += amount
                lane[L_RAISED_SCHED, i] += amount
                ev_paid[e, i] += 1 if pay else 0
                n_paid += pay
            n_paid = 0 if one_pass else n_paid


@jit(inline="always")
def contingent_funding(inputs, lane, theta, listed, t1, dt, m):
    """The contingent raise (§6) of the lanes that may raise and whose draw succeeds: success intensity
    logistic(a + b ln ratio + c M) a year, 1 - exp(-intensity dt) a step; distress terms under the floor
    (model v2)."""
    max_raises = inputs.max_raises
    for i in range(m):  # may this lane raise?
        burn1 = fmax(0.0, -lane[L_RING_SUM, i])
        may = ((lane[L_N_RAISES, i] < max_raises) & (t1 - lane[L_LAST_RAISE, i] >= theta[P_COOLDOWN, i] - 1e-9)
               & (lane[L_CASH, i] < theta[P_MIN_CASH, i] + theta[P_LOOKAHEAD, i] * burn1))
        lane[L_DUE, i] = 1.0 if may else 0.0
    # The due lanes' yearly success probability, spread over the step: their inputs side by side (rows
    # L_DUE_*, by position in the list, padded to whole vectors), then a SIMD loop (LLVM will not
    # vectorise reads through the list itself).
    n_due = list_lanes(lane[L_DUE], m, listed)
    n_vec = whole_vectors(n_due)
    for listed_k in range(n_vec):
        i = listed[min(listed_k, n_due - 1)]
        lane[L_DUE_LOG, listed_k] = lane[L_LOG_RATIO, i]
        lane[L_DUE_BASE, listed_k] = theta[P_RAISE_A, i] + theta[P_RAISE_C, i] * lane[L_MARKET, i]
        lane[L_DUE_SLOPE, listed_k] = theta[P_RAISE_B, i]
        # Distress (model v2): cash here is after the step's scheduled funding, before the credit line. Under
        # the floor the intensity and the size are cut; under -distress_limit no raise closes (intensity 0).
        cash = lane[L_CASH, i]
        distress = cash < theta[P_MIN_CASH, i]
        barred = cash < -theta[P_DISTRESS_LIMIT, i]
        lane[L_P_RAISE, listed_k] = 0.0 if barred else (theta[P_DISTRESS_FACTOR, i] if distress else 1.0)
        lane[L_DUE_SIZE, listed_k] = theta[P_DISTRESS_SIZE, i] if distress else 1.0
    for listed_k in range(n_vec):
        logit = lane[L_DUE_BASE, listed_k] + lane[L_DUE_SLOPE, listed_k] * lane[L_DUE_LOG, listed_k]
        intensity = lane[L_P_RAISE, listed_k] / (1.0 + exp_lanes(-logit))  # a yearly intensity
        lane[L_P_RAISE, listed_k] = 1.0 - exp_lanes(-intensity * dt)
    for listed_k in range(n_due):  # without a branch: one on the draw mispredicted
        i = listed[listed_k]
        closes = lane[L_U_RAISE, i] < lane[L_P_RAISE, listed_k]
        size = (fmin(theta[P_RAISE_MULTIPLE, i] * lane[L_RUN_RATE1, i], theta[P_RAISE_CAP, i])
                * lane[L_DUE_SIZE, listed_k]) if closes else 0.0
        lane[L_CASH, i] += size
        lane[L_RAISED_CONT, i] += size
        lane[L_N_RAISES, i] += 1.0 if closes else 0.0
        lane[L_LAST_RAISE, i] = t1 if closes else lane[L_LAST_RAISE, i]


@jit(inline="always")
def credit_line(lane, theta, k, m):
    """The credit line drawn or repaid, the lowest cash and the first shortfall; then ``start_step``'s decision
    for the next step."""
    for i in range(m):  # SIMD
        cash = lane[L_CASH, i]
        credit = lane[L_CREDIT, i]
        min_cash = theta[P_MIN_CASH, i]
        limit = theta[P_CREDIT_LIMIT, i]
        # Credit line: drawn below the floor, repaid above it.
        draw = fmin(limit - credit, min_cash - cash) if (cash < min_cash) & (credit < limit) else 0.0
        repay = fmin(credit, cash - min_cash) if (cash > min_cash) & (credit > 0.0) else 0.0
        cash = cash + draw - repay
        credit = credit + draw - repay
        lane[L_CASH, i] = cash
        lane[L_CREDIT, i] = credit
        lane[L_CREDIT_MAX, i] = fmax(lane[L_CREDIT_MAX, i], credit)
        # Shortfall: cash is not reset, so the gap measures the capital that was missing.
        lane[L_LOWEST, i] = fmin(lane[L_LOWEST, i], cash)
        short = cash < min_cash  # the funding gap, the largest shortfall, follows from the lowest cash at the end
        lane[L_FIRST_SF, i] = k if short & (lane[L_FIRST_SF, i] < 0.0) else lane[L_FIRST_SF, i]
        # Survival mode (model v2): on at a step end in shortfall, off at the first step end with cash at
        # min_cash + lookahead x the trailing year's burn or more; in between it stays as it was.
        burn = fmax(0.0, -lane[L_RING_SUM, i])
        recovered = cash >= fma(theta[P_LOOKAHEAD, i], burn, min_cash)
        lane[L_SURVIVAL, i] = 1.0 if short else (0.0 if recovered else lane[L_SURVIVAL, i])
        start_step(lane, theta, i)  # for the next step: here, its inputs are at hand


@jit(inline="always")
def credit_interest(lane, theta, ring, j, dt, m):
    """Interest on the credit line's drawn amount over the step (model v2), at the rate a year on what is
    drawn at the step's start: part of the step's free cash flow (row j of ``ring``), like the interest on cash."""
    for i in range(m):  # SIMD
        interest = theta[P_CREDIT_RATE, i] * lane[L_CREDIT, i] * dt
        lane[L_CASH, i] -= interest
        ring[j, i] -= interest
        lane[L_RING_SUM, i] -= interest
        lane[L_Y_FCF, i] -= interest


@jit(inline="always")
def record_year(lane, annual, y, m_out):
    """Year y's sums and end-of-year cash into ``annual``; the sums start afresh."""
    for i in range(m_out):
        annual[i, A_REV, y] = lane[L_Y_REV, i]
        annual[i, A_COGS, y] = lane[L_Y_COGS, i]
        annual[i, A_FCF, y] = lane[L_Y_FCF, i]
        annual[i, A_COMPUTE, y] = lane[L_Y_COMPUTE, i]
        annual[i, A_CASH, y] = lane[L_CASH, i]
        annual[i, A_UNITS, y] = lane[L_Y_UNITS, i]
        annual[i, A_CONTRACT, y] = lane[L_Y_CONTRACT, i]
        annual[i, A_SPOT, y] = lane[L_Y_SPOT, i]
        annual[i, A_IDLE, y] = lane[L_Y_IDLE, i]
        annual[i, A_RESALE, y] = lane[L_Y_RESALE, i]
        annual[i, A_UTIL, y] = lane[L_Y_UTIL, i]
    for r in (L_Y_REV, L_Y_COGS, L_Y_FCF, L_Y_COMPUTE, L_Y_UNITS, L_Y_CONTRACT, L_Y_SPOT, L_Y_IDLE, L_Y_RESALE,
              L_Y_UTIL):
        for i in range(m_out):
            lane[r, i] = 0.0


@jit(inline="always")
def record_paths(lane, theta, scalars, m_out):
    """The per-path outputs at the last step's end."""
    for i in range(m_out):
        scalars[i, S_CASH_END] = lane[L_CASH, i]
        scalars[i, S_LOWEST_CASH] = lane[L_LOWEST, i]
        # The largest min_cash - cash over the steps below the floor (0 without one) is min_cash - the lowest cash,
        # to the bit: a rounded difference never rises as the cash rises.
        scalars[i, S_FUNDING_GAP] = fmax(0.0, theta[P_MIN_CASH, i] - lane[L_LOWEST, i])
        scalars[i, S_FIRST_SHORTFALL] = lane[L_FIRST_SF, i]
        scalars[i, S_RAISED_SCHEDULED] = lane[L_RAISED_SCHED, i]
        scalars[i, S_RAISED_CONTINGENT] = lane[L_RAISED_CONT, i]
        scalars[i, S_CREDIT_MAX] = lane[L_CREDIT_MAX, i]
        scalars[i, S_CREDIT_END] = lane[L_CREDIT, i]
        scalars[i, S_N_RAISES] = lane[L_N_RAISES, i]



@jit(forceinline=True)
def start_step(lane, theta, i):
    """Lane i's decision at the start of a step, from its cash and trailing burn then: the cut of flexible
    training, while the runway rule holds or in survival mode (once, not both multiplied). And the step's revenue
    sums set to 0."""
    burn = fmax(0.0, -lane[L_RING_SUM, i])
    runway_short = (burn > 0.0) & (lane[L_CASH, i] < theta[P_RUNWAY_FLOOR, i] * burn)
    lane[L_CUT, i] = theta[P_CUT_FACTOR, i] if runway_short | (lane[L_SURVIVAL, i] > 0.0) else 1.0
    lane[L_REV, i] = 0.0
    lane[L_RUN_RATE1, i] = 0.0


@jit(forceinline=True)
def logistic_step(growth, curvature, rho, tau, scale):
    """(log growth, curvature) of a capped segment's step (model v2), from those of its growth curve alone
    (``growth`` = G, the integral of g over the step of length tau; ``curvature`` = -g' at its middle, times
    ``scale``) and rho = R(t0) / ceiling. Where G > 0, dR/dt = g R (1 - R / ceiling) is integrated exactly over
    the step: ln R1 - ln R0 = G - ln(1 + rho (e^G - 1)); the curvature of ln R is (1 - rho) (-g' + (G / tau)^2 rho),
    rho from the step's start (times ``scale``). Where G <= 0 growth is as without a ceiling."""
    positive = growth > 0.0
    logistic = growth - log1p_lanes(rho * (exp_lanes(growth) - 1.0))
    rate = growth / tau
    lifted = (1.0 - rho) * fma(rate * rate * scale, rho, curvature)
    return (logistic if positive else growth), (lifted if positive else curvature)


@jit(forceinline=True)
def curve_lift(seg, s, i, e0, dt):
    """Concave growth lifts the curve above its chord by ~ -G'' dt^2 / 12 on average: the factor, times dt (the
    step's length, a factor of its revenue). G'' at the step's middle is -kappa amp e0 exp(-kappa dt / 2),
    e0 = exp(-kappa t0); SG_CURV holds dt times all of it but e0."""
    return fma(seg[s, SG_CURV, i], e0, dt)


@jit(forceinline=True)
def bridge_exponent(seg, s, i, bridge):
    """The bridge's average over the step is N(0, s^2 tau / 12); the constant s^2 tau / 24 makes the
    factor exp(this)'s mean exp(s^2 tau / 12), the mean of the integral of exp(bridge)."""
    return fma(seg[s, SG_BRIDGE_SD, i], bridge, seg[s, SG_BRIDGE_MEAN, i])


@jit(forceinline=True)
def segment_step(seg, lane, s, i, d, ramp, weight):
    """Lane i's revenue from segment s over a step without a competition shock, and its run rate at the step's
    end, from the log growth d, ramp = (e^d - 1) / d and ``weight``, the step's length times the lift factors."""
    r0 = seg[s, SG_RATE, i]
    rate_ramp = r0 * ramp  # shared: r0 e^d = r0 + d r0 ramp
    lane[L_D, i] = d
    lane[L_WEIGHT, i] = weight
    lane[L_CONTRIB, i] = rate_ramp * weight
    lane[L_R1, i] = fma(d, rate_ramp, r0)



@jit(forceinline=True)
def shocked_ramp(d, when, jump):
    """(average of exp over the step's chord when a jump lands at fraction ``when`` of the step, e^(d + jump)):
    the integrals of exp(d s) over [0, when] and [when, 1] from two expm1 (libm, three calls). For the rare
    shocked lanes with |d| >= RAMP_RANGE; ``shocked_ramp_lanes`` does the others."""
    a, b = d * when, d * (1.0 - when)
    grow_a, grow_b, lift = math.expm1(a), math.expm1(b), math.exp(jump)
    first = when * (grow_a / a if abs(a) >= 1e-12 else 1.0 + 0.5 * a)
    second = (1.0 - when) * (1.0 + grow_a) * (grow_b / b if abs(b) >= 1e-12 else 1.0 + 0.5 * b)
    return first + lift * second, lift * (1.0 + grow_a) * (1.0 + grow_b)


@jit(forceinline=True)
def shocked_ramp_lanes(d, when, jump):
    """``shocked_ramp`` for |d| < RAMP_RANGE (so |d when|, |d (1 - when)| < RAMP_RANGE too) from two
    ramp_lanes and one exp_lanes: no calls, so a loop over lanes compiles to SIMD."""
    a, b = d * when, d * (1.0 - when)
    ramp_a, ramp_b = ramp_lanes(a), ramp_lanes(b)
    grow_a = fma(a, ramp_a, 1.0)  # e^a
    lift = exp_lanes(jump)
    return when * ramp_a + lift * ((1.0 - when) * grow_a * ramp_b), lift * grow_a * fma(b, ramp_b, 1.0)
