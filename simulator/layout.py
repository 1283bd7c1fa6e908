"""The data layout the kernel and its callers share: parameter indices, output variables, the kernel's scratch rows,
block sizes. Plain constants (numba freezes them into compiled code: ``simulator.jit`` keys its cache on this
file's source, so a change here recompiles every module that reads it)."""

from __future__ import annotations

# ------------------------------------------------------------------ inputs
# Scalar parameters shared by all paths' models, in kernel order (dotted config keys).
GLOBAL_PARAMS = (
    "competition.intensity", "competition.severity",
    "compute.gross_margin_0", "compute.price_drift", "compute.price_sigma",
    "compute.supply_shock_intensity", "compute.supply_shock_size",
    "compute.usage_drift", "compute.usage_sigma",
    "costs.opex_base", "costs.opex_growth", "costs.opex_revenue_ratio", "costs.cash_interest",
    "training.revenue_elasticity", "training.runway_floor", "training.cut_factor",
    "funding.initial_cash", "funding.min_cash",
    "funding.contingent.lookahead", "funding.contingent.intercept", "funding.contingent.revenue_slope",
    "funding.contingent.market_slope", "funding.contingent.size_multiple", "funding.contingent.size_cap",
    "funding.contingent.cooldown", "funding.credit.limit", "market.persistence",
    "funding.contingent.distress_factor", "funding.contingent.distress_size", "funding.contingent.distress_limit",
    "funding.credit.rate",
    "compute.supply_shock_half_life", "compute.resale",
)
(P_COMP_INTENSITY, P_COMP_SEVERITY, P_GM0, P_PRICE_DRIFT, P_PRICE_SIGMA, P_SUPPLY_INTENSITY,
 P_SUPPLY_SIZE, P_USAGE_DRIFT, P_USAGE_SIGMA, P_OPEX_BASE, P_OPEX_GROWTH, P_OPEX_RATIO,
 P_CASH_INTEREST, P_ELASTICITY, P_RUNWAY_FLOOR, P_CUT_FACTOR, P_INITIAL_CASH,
 P_MIN_CASH, P_LOOKAHEAD, P_RAISE_A, P_RAISE_B, P_RAISE_C, P_RAISE_MULTIPLE, P_RAISE_CAP,
 P_COOLDOWN, P_CREDIT_LIMIT, P_MARKET_PHI,
 P_DISTRESS_FACTOR, P_DISTRESS_SIZE, P_DISTRESS_LIMIT, P_CREDIT_RATE,
 P_SUPPLY_HALF_LIFE, P_RESALE) = range(len(GLOBAL_PARAMS))
N_GLOBAL = len(GLOBAL_PARAMS)
# Per revenue segment, starting at N_GLOBAL + SEGMENT_WIDTH * s.
# A segment without a ceiling has a placeholder ceiling of 0, which the kernel does not read
# (``ModelInputs.seg_capped``).
SEGMENT_PARAMS = ("run_rate", "growth_initial", "growth_long_run", "half_life", "sigma", "competition_exposure",
                  "ceiling")
SEG_RUN_RATE, SEG_G0, SEG_GINF, SEG_HALF_LIFE, SEG_SIGMA, SEG_EXPOSURE, SEG_CEILING = range(len(SEGMENT_PARAMS))
SEGMENT_WIDTH = len(SEGMENT_PARAMS)
# After the segments: one amount per scheduled raise.

# How a drawn parameter's value follows from its normal score z: its quantile table, interpolated; loc + scale z
# (a normal); exp(loc + scale z) (a lognormal). A closed form spares the table's lookups.
FORM_TABLE, FORM_AFFINE, FORM_EXP = range(3)


# ------------------------------------------------------------------ outputs
# Per-year outputs, annual[path, variable, year]. Compute (model v2): compute_spend = contract_spend (used
# contracted capacity) + idle_compute (take-or-pay paid for unused capacity) + spot_spend - compute_resale;
# compute_units the year's demand in units ($1 of compute at start-2026 spot prices); utilisation the year's
# average share of contracted capacity used (1 without contracts).
ANNUAL_VARS = ("revenue", "cogs", "fcf", "cash", "compute_spend",
               "compute_units", "contract_spend", "spot_spend", "idle_compute", "compute_resale", "utilisation")
(A_REV, A_COGS, A_FCF, A_CASH, A_COMPUTE,
 A_UNITS, A_CONTRACT, A_SPOT, A_IDLE, A_RESALE, A_UTIL) = range(len(ANNUAL_VARS))
# Per-path scalar outputs, scalars[path, k].
SCALAR_VARS = ("cash_end", "lowest_cash", "funding_gap", "first_shortfall_step", "raised_scheduled",
               "raised_contingent", "credit_drawn_max", "credit_outstanding_end", "n_raises")
(S_CASH_END, S_LOWEST_CASH, S_FUNDING_GAP, S_FIRST_SHORTFALL, S_RAISED_SCHEDULED,
 S_RAISED_CONTINGENT, S_CREDIT_MAX, S_CREDIT_END, S_N_RAISES) = range(len(SCALAR_VARS))
# Per-step outputs of ``trace_block``, steps[path, step, k]: revenue and FCF annualised (/ dt),
# gross margin 1 - cogs / revenue, cash at the end of the step.
STEP_VARS = ("revenue", "gross_margin", "fcf", "cash")
T_REV, T_GM, T_FCF, T_CASH = range(len(STEP_VARS))


# ------------------------------------------------------------------ the kernel's lanes and scratch rows
# Paths are simulated LANES at a time, structure-of-arrays: every per-path quantity is a row of a
# (quantity, lane) array, so the step's arithmetic runs as loops over lanes that compile to SIMD.
# Every loop runs over all LANES lanes, also in a tile with fewer paths (the others' results are dropped):
# LLVM then knows its trip count and leaves out the checks and remainders of a loop of unknown length.
# More lanes share those overheads, until a tile's rows (~0.8 MiB in all at 384 lanes) crowd a core's L2 cache
# (benchmarks/RESULTS.md has the measurements).
LANES = 384
assert LANES % 64 == 0  # list_lanes reads whole blocks of 64 lanes
# The length of a scratch array's rows. With rows a power of two long, rows 4 apart share their addresses' low
# 12 bits, which a CPU may take for a load depending on an earlier store (4K aliasing): the kernel's speed then
# varied from one process to the next by where the arrays landed. Rows of LANES + 8 are never 4 KiB apart
# within an array of fewer than 64 rows.
ROW = LANES + 8

# Per-segment constants and state, seg[segment, SG_*, lane].
SEG_ROWS = ("rate", "decay", "decay_step", "kappa", "amp", "ginf", "sigma", "drift", "amp_step", "vol", "bridge_sd",
            "bridge_mean", "curv", "exposure", "inv_ceiling", "ito")
(SG_RATE, SG_DECAY, SG_DECAY_STEP, SG_KAPPA, SG_AMP, SG_GINF, SG_SIGMA, SG_DRIFT,
 SG_AMP_STEP, SG_VOL, SG_BRIDGE_SD, SG_BRIDGE_MEAN, SG_CURV, SG_EXPOSURE, SG_INV_CEILING, SG_ITO) = range(len(SEG_ROWS))
SEG_SCRATCH = len(SEG_ROWS)
# Per-lane constants, state and the step's intermediate values, lane[L_*, lane].
LANE_ROWS = (
    "mean_comp", "none_comp", "jump_comp", "mean_supply", "none_supply", "jump_supply", "phi_dt", "market_vol",
    "drift_p", "vol_p", "drift_u", "vol_u", "opex_step", "c0",
    "cash", "credit", "credit_max", "raised_sched", "raised_cont", "n_raises", "last_raise", "lowest",
    "first_sf", "ring_sum", "ln_p", "ln_u", "market", "opex_fixed",
    "sign", "u_comp", "u_supply", "n_comp", "when_comp", "n_supply", "when_supply", "u_raise", "cut", "ratio0",
    "log_ratio", "rev", "run_rate1", "weight", "d", "contrib", "r1", "supply_lift",
    "y_rev", "y_cogs", "y_fcf", "y_compute", "due", "cogs", "curve", "wide", "due_log", "due_base", "due_slope",
    "p_raise", "scratch", "shock_d", "shock_when", "shock_jump", "shock_ramp", "shock_growth",
    "survival", "due_size",
    "jump_dev", "j_decay", "j_half", "y_units", "y_contract", "y_spot", "y_idle", "y_resale", "y_util",
)
(L_MEAN_COMP, L_NONE_COMP, L_JUMP_COMP, L_MEAN_SUPPLY, L_NONE_SUPPLY, L_JUMP_SUPPLY, L_PHI_DT, L_MARKET_VOL,
 L_DRIFT_P, L_VOL_P, L_DRIFT_U, L_VOL_U, L_OPEX_STEP, L_C0, L_CASH, L_CREDIT, L_CREDIT_MAX,
 L_RAISED_SCHED, L_RAISED_CONT, L_N_RAISES, L_LAST_RAISE, L_LOWEST, L_FIRST_SF, L_RING_SUM, L_LN_P, L_LN_U,
 L_MARKET, L_OPEX_FIXED, L_SIGN, L_U_COMP, L_U_SUPPLY, L_N_COMP, L_WHEN_COMP, L_N_SUPPLY, L_WHEN_SUPPLY,
 L_U_RAISE, L_CUT, L_RATIO0, L_LOG_RATIO, L_REV, L_RUN_RATE1, L_WEIGHT, L_D, L_CONTRIB, L_R1, L_SUPPLY_LIFT,
 L_Y_REV, L_Y_COGS, L_Y_FCF, L_Y_COMPUTE, L_DUE, L_COGS, L_CURVE, L_WIDE, L_DUE_LOG, L_DUE_BASE, L_DUE_SLOPE,
 L_P_RAISE, L_SCRATCH, L_SHOCK_D, L_SHOCK_WHEN, L_SHOCK_JUMP, L_SHOCK_RAMP, L_SHOCK_GROWTH,
 L_SURVIVAL, L_DUE_SIZE,
 L_JUMP_DEV, L_J_DECAY, L_J_HALF, L_Y_UNITS, L_Y_CONTRACT, L_Y_SPOT, L_Y_IDLE, L_Y_RESALE,
 L_Y_UTIL) = range(len(LANE_ROWS))
LANE_SCRATCH = len(LANE_ROWS)
assert all(globals()[f"L_{name.upper()}"] == k for k, name in enumerate(LANE_ROWS))  # names and rows agree
assert all(globals()[f"SG_{name.upper()}"] == k for k, name in enumerate(SEG_ROWS))

# ------------------------------------------------------------------ blocks of paths
# Paths that the passes over a chunk's outputs (first_broken_path, summary._variable_rows) take at once: their
# outputs, ~270 bytes a path, stay in the L1 cache meanwhile.
OUTPUT_BLOCK = 64
# The largest magnitude an output may have. A finite output beyond it comes from a config that drives growth, prices
# or shocks past any meaning, and the summaries' squares and sums of it overflow (Python's ** raises): it is refused
# as an infinity is.
OUTPUT_LIMIT = 1e100
# Float sums are folded per block of path ids, in block order (``samples``), so that they do not depend on chunking.
BLOCK_PATHS = 1 << 16
CHECK_EVERY = 1 << 16  # auto-stop decides only at multiples of this many paths
assert CHECK_EVERY % BLOCK_PATHS == 0  # a run that stops there ends on a whole block: its sums are folded
