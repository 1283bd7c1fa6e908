"""The numba kernel: MODEL.md §1-§6 for a block of paths.

Only jitted functions and the layout constants they share with the engine live here:
arrays and scalars in, ``out`` arrays filled.  Randomness is counter-based: a path's
numbers are a SplitMix64 stream keyed by ``(seed, path_id)`` alone, so results do not
depend on thread count, chunking or machine, and any path can be replayed by its id.

Paths are simulated ``LANES`` at a time (``simulate_tile``): every per-path quantity is a row of
a (quantity, lane) array and the step's arithmetic runs in loops over lanes that LLVM compiles
to SIMD, with branch-free ``exp_lanes`` and ``log_lanes`` (polynomials in fused multiply-adds)
where libm would not vectorise. What is rare (the ziggurat's rejections, events, raises) runs on
the lanes that ``list_lanes`` finds from bit masks. Each lane's stream advances exactly as a
path-by-path kernel would advance it.
"""

from __future__ import annotations

import math

import numpy as np
import llvmlite.binding as llvm
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

# The lane loops of ``simulate_tile`` read and write many rows of a few arrays; LLVM vectorises a loop
# only if it can check at run time that those do not overlap, and by default it gives up beyond 8
# checks (most of the step's loops need more). Raising the limits only allows more checks: the
# results are the same, the loops faster (measured: 2.6 -> 2.3 us a path). Unknown options are ignored.
llvm.set_option("", "-runtime-memory-check-threshold=256")
llvm.set_option("", "-vectorize-memory-check-threshold=512")

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

# How a drawn parameter's value follows from its normal score z: its quantile table, interpolated; loc + scale z
# (a normal); exp(loc + scale z) (a lognormal). A closed form spares the table's lookups (~2% of the kernel).
FORM_TABLE, FORM_AFFINE, FORM_EXP = range(3)

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
def ziggurat_parts(bits):
    """(layer, sign, x >= 0) of a ziggurat candidate from 64 random bits: the low 8 bits pick the layer,
    bit 8 the sign, the top 53 bits the position in the layer. ``x < ZIG_X[layer + 1]`` accepts it
    (~99% of the time)."""
    layer = int(bits & np.uint64(255))
    sign = 1.0 if (bits >> np.uint64(8)) & np.uint64(1) else -1.0
    return layer, sign, float(np.int64(bits >> np.uint64(11))) * _TO_UNIT * ZIG_X[layer]


@njit(inline="always", **_jit)
def next_normal(state):
    """(new state, standard normal) by the ziggurat: one 64-bit draw ~99% of the time."""
    state = state + GOLDEN
    bits = mix64(state)
    layer, sign, x = ziggurat_parts(bits)
    if x < ZIG_X[layer + 1]:
        return state, sign * x
    return normal_rejected(state, bits)


@njit(**_jit)
def normal_rejected(state, bits):
    """(new state, standard normal) of a ziggurat draw whose first candidate, ``bits`` drawn at ``state``,
    fell outside its layer's rectangle: the wedge or tail test, and new candidates until one is accepted."""
    while True:
        layer, sign, x = ziggurat_parts(bits)
        if x < ZIG_X[layer + 1]:
            return state, sign * x
        if layer == 0:  # the tail beyond r (Marsaglia 1964)
            while True:
                state, u1 = next_uniform(state)
                state, u2 = next_uniform(state)
                t = -math.log1p(-u1) / ZIG_R
                if -2.0 * math.log1p(-u2) > t * t:
                    return state, sign * (ZIG_R + t)
        state, u = next_uniform(state)
        if ZIG_F[layer + 1] + u * (ZIG_F[layer] - ZIG_F[layer + 1]) < math.exp(-0.5 * x * x):
            return state, sign * x
        state = state + GOLDEN
        bits = mix64(state)


@njit(inline="always", **_jit)
def list_lanes(flags, m, listed):
    """Write the lanes i < m whose ``flags[i]`` is nonzero to ``listed[0 .. n - 1]``, in order; return n.
    A SIMD loop makes a bit mask of 64 lanes at a time and only its set bits are visited: for the rare
    lanes (rejections, events, raises) a branch on every lane cost more than their own work. ``flags``
    has LANES entries: the mask loop reads all 64 of its lanes (a constant trip count vectorises
    better) and drops those from m on."""
    n = 0
    for w in range(0, m, 64):
        block = flags[w:w + 64]  # indices from range(64): numba adds no negative-index select, LLVM vectorises
        mask = np.uint64(0)
        for i in range(64):
            mask |= np.uint64(block[i] != 0) << np.uint64(i)
        if m - w < 64:
            mask &= (np.uint64(1) << np.uint64(m - w)) - np.uint64(1)
        while mask != np.uint64(0):
            listed[n] = w + trailing_zeros(mask)
            n += 1
            mask &= mask - np.uint64(1)
    return n


@njit(inline="always", **_jit)
def normals_lanes(states, bits, listed, signs, out, row, m):
    """out[row, i] = the next standard normal of lane i's stream, times ``signs[i]``, for i < m: the
    ziggurat's first try in a SIMD loop, the ~1.5% of rejected candidates finished lane by lane
    (``listed``: scratch of m ints). Each lane's stream advances exactly as ``next_normal`` advances it."""
    for i in range(m):
        state = states[i] + GOLDEN
        b = mix64(state)
        layer, sign, x = ziggurat_parts(b)
        states[i] = state
        bits[i] = b if x >= ZIG_X[layer + 1] else np.uint64(0)  # 0: accepted
        out[row, i] = sign * x * signs[i]
    for k in range(list_lanes(bits, m, listed)):
        i = listed[k]
        states[i], z = normal_rejected(states[i], bits[i])
        out[row, i] = z * signs[i]


@njit(inline="always", **_jit)
def lane_uniform(states, signs, i):
    """The next uniform of lane i's stream, mirrored (1 - u) where ``signs[i]`` < 0."""
    state = states[i] + GOLDEN
    states[i] = state
    u = float(np.int64(mix64(state) >> np.uint64(11))) * _TO_UNIT
    return 1.0 - u if signs[i] < 0.0 else u


@njit(inline="always", **_jit)
def uniforms_lanes(states, signs, out, m):
    """out[i] = ``lane_uniform`` of lane i, for i < m."""
    for i in range(m):
        out[i] = lane_uniform(states, signs, i)


@njit(inline="always", **_jit)
def correlate_lanes(chol, first, z, z0, cols, n, m):
    """z[z0 + r, :m] = (chol @ z[z0:z0 + n])[r, :m] for r < n, in place, every lane at once; row r of the
    lower-triangular ``chol`` is zero before column ``first[r]``. The rows go from the last, as row r reads
    rows <= r only. A row that is its own normal (a weight of 1 alone) is left as it is, and zero weights are
    skipped: most of a matrix with independent channels. Each sum is a chain of fused multiply-adds from 0, in
    the columns' order (the same bits as a product and then fused multiply-adds, short of the sign of a
    zero), up to four terms a pass over the lanes: a pass a term was bound by its stores. ``z``'s last three
    rows are scratch, the third to last all zeros; ``cols`` is scratch of n ints."""
    zeros = z.shape[0] - 3
    for r in range(n - 1, -1, -1):
        k = 0
        for c in range(first[r], r):  # the row's terms left of the diagonal
            if chol[r, c] != 0.0:
                cols[k] = c + z0
                k += 1
        wr, row = chol[r, r], z0 + r
        if k == 0:
            if wr != 1.0:
                for i in range(m):
                    z[row, i] = wr * z[row, i]
            continue
        src = zeros
        g = 0
        while k - g > 3:  # four terms into a scratch row; two in turn, as LLVM vectorises no loop whose rows overlap
            dst = zeros + 1 + (g // 4) % 2
            ca, cb, cc, cd = cols[g], cols[g + 1], cols[g + 2], cols[g + 3]
            wa, wb, wc, wd = chol[r, ca - z0], chol[r, cb - z0], chol[r, cc - z0], chol[r, cd - z0]
            for i in range(m):
                z[dst, i] = fma(wd, z[cd, i], fma(wc, z[cc, i], fma(wb, z[cb, i], fma(wa, z[ca, i], z[src, i]))))
            src = dst
            g += 4
        # The last terms and the diagonal's, into the row itself (the same index read and written: a loop
        # LLVM can tell is safe to vectorise). Where the passes took every term (k a multiple of 4), cols[g]
        # = cols[k] was never written: its garbage, used as a column of chol, read out of bounds (a crash with
        # 5, 9, 13 correlated parameters). Every index is clamped to the written k - 1; the loop that runs
        # then reads none of them.
        ca, cb, cc = cols[min(g, k - 1)], cols[min(g + 1, k - 1)], cols[min(g + 2, k - 1)]
        wa, wb, wc = chol[r, ca - z0], chol[r, cb - z0], chol[r, cc - z0]
        if k - g == 3:
            for i in range(m):
                z[row, i] = fma(wr, z[row, i], fma(wc, z[cc, i], fma(wb, z[cb, i], fma(wa, z[ca, i], z[src, i]))))
        elif k - g == 2:
            for i in range(m):
                z[row, i] = fma(wr, z[row, i], fma(wb, z[cb, i], fma(wa, z[ca, i], z[src, i])))
        elif k - g == 1:
            for i in range(m):
                z[row, i] = fma(wr, z[row, i], fma(wa, z[ca, i], z[src, i]))
        else:
            for i in range(m):
                z[row, i] = fma(wr, z[row, i], z[src, i])


@njit(inline="always", **_jit)
def interp_lanes(row, z, z_min, z_step, index, at, out, m):
    """out[i] = the quantile table ``row`` at normal score z[i] (linear interpolation, clamped) for i < m, in
    three loops: the cells in SIMD, their two entries copied lane by lane (LLVM will not vectorise the
    lookups; Zen 4's gather was no faster than these loads), the interpolation in SIMD. ``index`` and ``at``
    are scratch; ``out`` holds the next entries in between. The grid's step is a power of two (2^-8), so
    multiplying by its reciprocal is exact and spares a division a lane."""
    inv_step = 1.0 / z_step
    last = row.shape[0] - 1
    for i in range(m):
        index[i] = np.int64(fmin(fmax((z[i] - z_min) * inv_step, 0.0), last - 1.0))
    for i in range(m):
        j = np.uint64(index[i])  # unsigned: numba wraps a signed index around, a select a lane
        at[i] = row[j]
        out[i] = row[j + np.uint64(1)]
    first, final = row[0], row[last]
    for i in range(m):
        pos = (z[i] - z_min) * inv_step
        inside = at[i] + (pos - index[i]) * (out[i] - at[i])
        out[i] = first if pos <= 0.0 else (final if pos >= last else inside)


@njit(inline="always", **_jit)
def closed_form_lanes(form, loc, scale, z, z_min, z_max, out, m):
    """out[i] = loc + scale z[i], or its exp for ``FORM_EXP``, for i < m: a normal or lognormal parameter at
    normal score z, clamped to the tables' grid [z_min, z_max] as ``interp_lanes`` clamps it."""
    if form == FORM_EXP:
        for i in range(m):
            out[i] = exp_lanes(loc + scale * fmin(fmax(z[i], z_min), z_max))
    else:
        for i in range(m):
            out[i] = loc + scale * fmin(fmax(z[i], z_min), z_max)


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
def poisson_lanes(states, signs, lane, listed, u, mean, p_zero, count, when, m):
    """``poisson_count`` of every lane from its next uniform (``lane_uniform``, kept in row ``u`` of ``lane``):
    rows ``mean`` and ``p_zero`` in, ``count`` and ``when`` out, ``when`` only where count > 0 (the model reads
    it nowhere else). The draw and no event (u <= p_zero, most steps) in one SIMD loop; the lanes with events
    lane by lane. Returns their number n, and leaves them in ``listed[:n]`` (m ints), in order, for the model."""
    for i in range(m):
        lane[u, i] = lane_uniform(states, signs, i)
        lane[count, i] = 0.0 if lane[u, i] <= lane[p_zero, i] else -1.0  # -1: counted below
    n = list_lanes(lane[count], m, listed)
    for k in range(n):
        i = listed[k]
        n_events, lane[when, i] = poisson_count(lane[u, i], lane[mean, i], lane[p_zero, i])
        lane[count, i] = n_events
    return n


@njit(inline="always", **_jit)
def shocked_ramp(d, when, jump):
    """(average of exp over the step's chord when a jump lands at fraction ``when`` of the step, e^(d + jump)):
    the integrals of exp(d s) over [0, when] and [when, 1] from two expm1 (libm, three calls). For the rare
    shocked lanes with |d| >= RAMP_RANGE; ``shocked_ramp_lanes`` does the others."""
    a, b = d * when, d * (1.0 - when)
    grow_a, grow_b, lift = math.expm1(a), math.expm1(b), math.exp(jump)
    first = when * (grow_a / a if abs(a) >= 1e-12 else 1.0 + 0.5 * a)
    second = (1.0 - when) * (1.0 + grow_a) * (grow_b / b if abs(b) >= 1e-12 else 1.0 + 0.5 * b)
    return first + lift * second, lift * (1.0 + grow_a) * (1.0 + grow_b)


@njit(inline="always", **_jit)
def shocked_ramp_lanes(d, when, jump):
    """``shocked_ramp`` for |d| < RAMP_RANGE (so |d when|, |d (1 - when)| < RAMP_RANGE too) from two
    ramp_lanes and one exp_lanes: no calls, so a loop over lanes compiles to SIMD."""
    a, b = d * when, d * (1.0 - when)
    ramp_a, ramp_b = ramp_lanes(a), ramp_lanes(b)
    grow_a = fma(a, ramp_a, 1.0)  # e^a
    lift = exp_lanes(jump)
    return when * ramp_a + lift * ((1.0 - when) * grow_a * ramp_b), lift * grow_a * fma(b, ramp_b, 1.0)


SMALL_RANGE = 0.25  # exp_taylor is accurate for |w| below this


@njit(inline="always", **_jit)
def exp_taylor(w):
    """exp(w) by its Taylor series to w^7: relative error < 7e-10 for |w| < SMALL_RANGE."""
    return horner(w, _TAYLOR_SERIES)


@njit(inline="always", **_jit)
def exp_small(w):
    """exp(w): ``exp_taylor`` for |w| < SMALL_RANGE, ``exp_lanes`` otherwise. Used for the bridge factor,
    whose argument is a few hundredths (its standard deviation 0.02-0.05 in the default config)."""
    return exp_taylor(w) if abs(w) < SMALL_RANGE else exp_lanes(w)


@njit(inline="always", **_jit)
def whole_vectors(n):
    """n rounded up to whole vectors of 8 lanes: a SIMD loop over n listed lanes' inputs, copied side by
    side (the rest padded with copies of the last), runs without a scalar remainder."""
    return (n + 7) // 8 * 8


@njit(inline="always", **_jit)
def fmax(a, b):
    """Python's max(a, b) as a select (numba's built-in max made lane loops up to 3x slower; so did ``and``,
    where ``&`` of the two comparisons is a select)."""
    return b if b > a else a


@njit(inline="always", **_jit)
def fmin(a, b):
    """Python's min(a, b) as a select (see ``fmax``)."""
    return b if b < a else a


@intrinsic
def bits_as_float(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits`` (a free reinterpretation)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def float_as_bits(typingctx, x):
    """The int64 whose bits are the IEEE-754 bits of the float64 ``x``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring ``array[index]`` (a contiguous 1-d array, any index: a prefetch never faults) into
    its caches, for a loop bound by the latency of random reads it can foresee."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        item = builder.gep(ary.data, [args[1]])
        byte_ptr = ir.IntType(8).as_pointer()
        signature_ir = ir.FunctionType(ir.VoidType(), [byte_ptr] + [ir.IntType(32)] * 3)
        fn = cgutils.get_or_insert_function(builder.module, signature_ir, "llvm.prefetch.p0")
        read, keep, data = (ir.Constant(ir.IntType(32), k) for k in (0, 3, 1))
        builder.call(fn, [builder.bitcast(item, byte_ptr), read, keep, data])
        return context.get_dummy_value()
    return types.void(array, index), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c with one rounding (IEEE fused multiply-add): the same bits on every machine, one
    instruction where the CPU has FMA (x86-64 since 2013, every ARM64), a libm call elsewhere."""
    if not all(isinstance(x, types.Float) for x in (a, b, c)):
        return None

    def codegen(context, builder, signature, args):
        f64 = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f64, [f64] * 3), "llvm.fma.f64")
        return builder.call(fn, [context.cast(builder, v, t, types.float64) for v, t in zip(args, signature.args)])
    return types.float64(a, b, c), codegen


# An empty inline asm that passes a float64 through a register of this CPU's vector unit (None: another CPU).
_FLOAT_REGISTER = {"x86_64": "x", "aarch64": "w", "arm64": "w"}.get(llvm.get_process_triple().split("-")[0])


@intrinsic
def opaque(typingctx, x):
    """x, hidden from LLVM's constant folding behind an empty inline asm. Why: numba's JIT code model reaches
    every constant through a 64-bit address of its own, so a SIMD loop that runs out of registers reloads
    each polynomial coefficient with two instructions on every iteration. An opaque coefficient is computed
    once before the loop instead (the asm reads no memory, so LLVM hoists it) and, when spilled, reloaded
    as the FMA's own operand: about 2% of the kernel's time. Elsewhere than x86-64 and ARM64, plain x."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[0], signature.args[0], types.float64)
        if _FLOAT_REGISTER is None:
            return value
        f64 = ir.DoubleType()
        asm = ir.InlineAsm(ir.FunctionType(f64, [f64]), "", f"={_FLOAT_REGISTER},0", side_effect=False)
        return builder.call(asm, [value], attrs=("nounwind", "readnone"))
    return types.float64(x), codegen


@njit(inline="always", **_jit)
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


@njit(inline="always", **_jit)
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


@njit(inline="always", **_jit)
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


@njit(inline="always", **_jit)
def log1p_lanes(x):
    """ln(1 + x) for x > -1 without calls, so loops over lanes compile to SIMD: log_lanes(u), u = 1 + x,
    corrected for the rounding of u to first order, (x - (u - 1)) / u, which keeps tiny x exact."""
    u = 1.0 + x
    return log_lanes(u) + (x - (u - 1.0)) / u


RAMP_RANGE = 2.0  # ramp_lanes is accurate for |d| below this


@njit(inline="always", **_jit)
def ramp_lanes(d):
    """(e^d - 1) / d, the average of exp over a ramp from 0 to d, for |d| < RAMP_RANGE, without calls,
    branches or a division: the Taylor series of (e^h - 1) / h at h = d / 4 to h^11, then twice
    f(2h) = f(h) (1 + h f(h) / 2). Relative error < 1e-15 for |d| < 1 and < 6e-14 up to RAMP_RANGE (against
    mpmath): a series to h^14 was accurate to 1e-15 up to 2 but cost 3 more operations a lane, ~2% of the kernel."""
    f = horner(d, _RAMP_SERIES)  # the series in h = d / 4, its powers of 1/4 in the coefficients
    eighth = 0.125 * d  # h / 2 = d / 8
    f *= fma(eighth, f, 1.0)
    return f * fma(eighth + eighth, f, 1.0)  # an add, not a second product: the FMA units are the busier


# ------------------------------------------------------------------ the model

# Paths are simulated LANES at a time, structure-of-arrays: every per-path quantity is a row of a
# (quantity, lane) array, so the step's arithmetic runs as loops over lanes that compile to SIMD.
# Random draws, Poisson counts, scheduled raises and other rare or branchy work run lane by lane.
# Every loop runs over all LANES lanes, also in a tile with fewer paths (the others' results are dropped):
# LLVM then knows its trip count and leaves out the checks and remainders of a loop of unknown length,
# which at ~75 loops a step cost more than the work (128 lanes: 1,049 -> 1,028 ns a path). More lanes share
# those overheads, until a tile's rows (~0.8 MiB in all at 384 lanes) crowd a core's 1 MiB L2 cache: 256 ran at
# 980, 512 at 986; later, 384 at 932 against 951 for 256, and 512 at 971 against 942 for 384. Measured with
# benchmarks/compare_kernel.py.
LANES = 384
assert LANES % 64 == 0  # list_lanes reads whole blocks of 64 lanes
# The length of a scratch array's rows. A lane loop reads some rows and writes others; with rows of 128 lanes
# (1 KiB), rows 4 apart shared their addresses' low 12 bits, which a CPU may take for a load depending on an
# earlier store (4K aliasing, presumably): by where the arrays landed, the kernel ran at ~1,040 or ~1,095 ns
# a path from one process to the next (11 fast of 19). Rows of LANES + 8 are never 4 KiB apart within an
# array of fewer than 64 rows: 13 fast of 14, the other on a slow spell of the machine.
ROW = LANES + 8

# Per-segment constants and state, seg[segment, SG_*, lane].
(SG_RATE, SG_DECAY, SG_DECAY_STEP, SG_KAPPA, SG_AMP, SG_GINF, SG_SIGMA, SG_DRIFT,
 SG_AMP_STEP, SG_VOL, SG_BRIDGE_SD, SG_BRIDGE_MEAN, SG_CURV, SG_EXPOSURE) = range(14)
SEG_SCRATCH = 14
# Per-lane constants, state and the step's intermediate values, lane[L_*, lane].
(L_MEAN_COMP, L_NONE_COMP, L_JUMP_COMP, L_MEAN_SUPPLY, L_NONE_SUPPLY, L_JUMP_SUPPLY, L_PHI_DT, L_MARKET_VOL,
 L_DRIFT_P, L_VOL_P, L_DRIFT_U, L_VOL_U, L_OPEX_STEP, L_KEEP, L_C0,
 L_CASH, L_CREDIT, L_CREDIT_MAX, L_RAISED_SCHED, L_RAISED_CONT, L_N_RAISES, L_LAST_RAISE, L_LOWEST,
 L_FIRST_SF, L_RING_SUM, L_LN_P, L_LN_U, L_MARKET, L_OPEX_FIXED,
 L_SIGN, L_U_COMP, L_U_SUPPLY, L_N_COMP, L_WHEN_COMP, L_N_SUPPLY, L_WHEN_SUPPLY, L_U_RAISE, L_CUT, L_RATIO0, L_LOG_RATIO,
 L_REV, L_RUN_RATE1, L_WEIGHT, L_D, L_CONTRIB, L_R1, L_SUPPLY_LIFT,
 L_Y_REV, L_Y_COGS, L_Y_FCF, L_Y_COMPUTE, L_DUE, L_COGS, L_CURVE, L_WIDE, L_DUE_LOG, L_DUE_BASE, L_DUE_SLOPE, L_P_RAISE, L_SCRATCH,
 L_SHOCK_D, L_SHOCK_WHEN, L_SHOCK_JUMP, L_SHOCK_RAMP, L_SHOCK_GROWTH) = range(65)
LANE_SCRATCH = 65


@njit(**_jit)
def simulate_tile(seed, first, antithetic, spy, n_years, tables, form, loc_scale, drawn_slot, z_min, z_step,
                  chol_param, chol_first, seg_launch, share, tc_plan, committed, plan_rate, price_level, ev_start,
                  ev_end, ev_prob, ev_tranches, ev_period, ev_gamma, max_raises, initial_burn, chol_shock,
                  theta_params, theta_out, annual, scalars, steps):
    """Simulate paths ``first .. first + LANES - 1`` together and fill, for the first m of them
    (m = ``theta_out.shape[0]`` <= LANES), ``theta_out`` (m, len(theta_params): column j holds parameter
    ``theta_params[j]``, in kernel order), ``annual`` (m, V, Y) and
    ``scalars`` (m, S), and, when ``steps.shape[1] > 0``, ``steps`` (m, T, len(STEP_VARS)) with each step's
    values. Each path's numbers depend on its id alone, so the lanes beyond m change nothing.

    The arithmetic is arranged for speed (per-path constants hoisted, exponentials advanced by
    multiplication, lanes in SIMD loops); ``simulator.reference`` computes the same numbers, one path at
    a time, from the formulas as written.
    """
    m_out = theta_out.shape[0]
    m = LANES  # the lane loops' trip count, a constant (see LANES)
    n_par = tables.shape[0]
    n_drawn = chol_param.shape[0]
    n_seg = seg_launch.shape[0]
    n_ev = ev_start.shape[0]
    n_ch = chol_shock.shape[0]
    # Scratch, allocated here for every tile, not once by the caller: LLVM then knows their rows' strides
    # (constants), so a lane loop over several rows needs fewer run-time checks that they do not overlap. That
    # was worth 2% of the kernel's time for ``lane`` and ``seg``, and 1-2% more for the others.
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
    ev0 = N_GLOBAL + SEGMENT_WIDTH * n_seg
    dt = 1.0 / spy
    sqdt = math.sqrt(dt)
    tracing = steps.shape[1] > 0

    for i in range(m):
        # Antithetic pairs: path 2k+1 replays the stream of path 2k with every normal negated and every
        # uniform mirrored (u -> 1 - u). The ziggurat's rejections depend on |z| only, so the
        # partner's normals are exactly -z.
        mirror = antithetic and (first + i) % 2 == 1
        lane[L_SIGN, i] = -1.0 if mirror else 1.0
        states[i] = path_key(seed, first + i - 1 if mirror else first + i)
    signs = lane[L_SIGN]

    # 1. Parameters: correlated normal scores -> closed forms or quantile tables (Gaussian copula).
    z_max = z_min + z_step * (tables.shape[1] - 1)
    for d in range(n_drawn):
        normals_lanes(states, bits, listed, signs, z, d, m)
    correlate_lanes(chol_param, chol_first, z, 0, cols, n_drawn, m)
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
    for i in range(m_out):  # path by path: a row of stores to one place is cheaper than a column of them
        for j in range(theta_params.shape[0]):
            theta_out[i, j] = theta[theta_params[j], i]

    # 2. Scheduled raises: closing time within the window and the closing draw.
    for e in range(n_ev):
        uniforms_lanes(states, signs, ev_time[e], m)
        for i in range(m):
            ev_time[e, i] = ev_start[e] + ev_time[e, i] * (ev_end[e] - ev_start[e])
        uniforms_lanes(states, signs, ev_u[e], m)
        for i in range(m):
            ev_state[e, i] = 0  # 0 pending, 1 closed, 2 failed
            ev_paid[e, i] = 0

    # 3. Initial state and per-path constants (SIMD loops; libm only for log1p and expm1).
    for s in range(n_seg):
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
        lane[L_KEEP, i] = 1.0 - theta[P_DEFERRABLE, i]
        lane[L_C0, i] = 1.0 - theta[P_GM0, i]
        lane[L_CASH, i] = theta[P_INITIAL_CASH, i]
    for j in range(spy):
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
        lane[L_SUPPLY_LIFT, i] = 1.0
        start_step(lane, theta, i)

    y = 0
    j = 0  # step within the year
    for k in range(n_years * spy):
        t0 = k * dt
        t1 = t0 + dt
        # Decisions at the start of the step: trailing burn and runway rule (``start_step``, taken at the end of
        # the step before), revenue vs plan. The row L_LOG_RATIO holds ln(launched segments' run rate / plan) at
        # the last step's end, this step's start: the costs loop leaves it there. Summed afresh (L_RATIO0) at the
        # first step, or where a segment launched exactly at the boundary (then the last step's sum left it out
        # and this one counts it).
        fresh = k == 0
        for s in range(n_seg):
            fresh |= (seg_launch[s] <= t0) != (seg_launch[s] < (k - 1) * dt + dt)
        if fresh:
            for i in range(m):
                lane[L_RATIO0, i] = 0.0
            for s in range(n_seg):
                if seg_launch[s] <= t0:
                    for i in range(m):
                        lane[L_RATIO0, i] += seg[s, SG_RATE, i]
            for i in range(m):
                lane[L_LOG_RATIO, i] = log_lanes(fmax(lane[L_RATIO0, i] / plan_rate[k], 1e-9))

        # Shocks of the step: the channels' increments, then for each segment the step's average of
        # its Brownian bridge (so the revenue of a long step has the variance of the continuous model).
        # Event counts are Poisson per step; MODEL.md's Bernoulli(1 - exp(-lambda dt)) is "count >= 1".
        # The contingent raise's uniform is drawn every step, used or not, so two configs share every later
        # random number (common random numbers).
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

        # Revenue (§3). The growth curve is integrated exactly; within the step ln R follows its
        # chord plus curvature and bridge corrections, and a competition shock lands at its time.
        for s in range(n_seg):
            if seg_launch[s] >= t1:
                for i in range(m):
                    seg[s, SG_DECAY, i] *= seg[s, SG_DECAY_STEP, i]
                continue
            n_steep = n_wide = 0
            if seg_launch[s] > t0:  # the segment launches in this step: a partial step from its launch to t1
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

        # Compute price and usage (§4); costs use the step's average (log-midpoint). The price is
        # exp(mid_p) * level, level the config's dated shocks times the supply shock's lift of the step's
        # average (1 without one); products with the price are taken as one exp of the summed logs.
        for listed_k in range(n_supply):  # lanes with a supply shock: its jump lands at its time
            i = supplied[listed_k]
            when = lane[L_WHEN_SUPPLY, i]
            lane[L_SUPPLY_LIFT, i] = when + (1.0 - when) * exp_lanes(lane[L_N_SUPPLY, i] * lane[L_JUMP_SUPPLY, i])
        fixed_share = committed[y]
        plan_spend = dt * tc_plan[y]
        for i in range(m):  # SIMD: price, costs (§5) and cash flow (§6)
            rev = lane[L_REV, i]
            cash = lane[L_CASH, i]
            ln_p0 = lane[L_LN_P, i]
            ln_p = fma(lane[L_VOL_P, i], eps[n_seg, i], ln_p0 + lane[L_DRIFT_P, i])
            lane[L_LN_P, i] = ln_p
            mid_p = 0.5 * (ln_p0 + ln_p)
            level = price_level[k] * lane[L_SUPPLY_LIFT, i]
            ln_u0 = lane[L_LN_U, i]
            ln_u = fma(lane[L_VOL_U, i], eps[n_seg + 1, i], ln_u0 + lane[L_DRIFT_U, i])
            lane[L_LN_U, i] = ln_u
            cogs = lane[L_C0, i] * level * exp_lanes(fma(0.5, ln_u0 + ln_u, mid_p)) * rev
            opex = fma(theta[P_OPEX_RATIO, i], rev, lane[L_OPEX_FIXED, i])
            lane[L_OPEX_FIXED, i] *= lane[L_OPEX_STEP, i]
            fixed = fixed_share * lane[L_KEEP, i]
            flexible = ((1.0 - fixed) * level * exp_lanes(fma(theta[P_ELASTICITY, i], lane[L_LOG_RATIO, i], mid_p))
                        * lane[L_CUT, i])
            training = plan_spend * (fixed + flexible)
            interest = theta[P_CASH_INTEREST, i] * fmax(cash, 0.0) * dt
            fcf = fma(-share[y], rev, rev) - cogs - opex - training + interest
            lane[L_CASH, i] = cash + fcf
            lane[L_RING_SUM, i] += fcf - ring[j, i]
            ring[j, i] = fcf
            lane[L_MARKET, i] = fma(lane[L_PHI_DT, i], lane[L_MARKET, i], lane[L_MARKET_VOL, i] * eps[n_seg + 2, i])
            lane[L_LOG_RATIO, i] = log_lanes(fmax(lane[L_RUN_RATE1, i] / plan_rate[k + 1], 1e-9))  # at the step's end
            lane[L_Y_REV, i] += rev
            lane[L_Y_COGS, i] += cogs
            lane[L_Y_FCF, i] += fcf
            lane[L_Y_COMPUTE, i] += cogs + training
            lane[L_COGS, i] = cogs
        for listed_k in range(n_supply):  # the supply shocks' jumps, now that the step's average is taken
            i = supplied[listed_k]
            lane[L_LN_P, i] += lane[L_N_SUPPLY, i] * lane[L_JUMP_SUPPLY, i]
            lane[L_SUPPLY_LIFT, i] = 1.0
        if tracing:  # a loop of its own: a branch inside the one above cost ~2.5%
            for i in range(m_out):
                rev = lane[L_REV, i]
                steps[i, k, T_REV] = rev / dt
                steps[i, k, T_GM] = 1.0 - lane[L_COGS, i] / rev if rev > 0.0 else math.nan
                steps[i, k, T_FCF] = ring[j, i] / dt

        # Scheduled funding (§6), event by event in SIMD loops; an event is skipped in the steps before its
        # window opens and after its last tranche can have been paid.
        for e in range(n_ev):
            if ev_start[e] >= t1 or t0 > ev_end[e] + ev_tranches[e] * ev_period[e]:
                continue
            single = ev_tranches[e] == 1
            if t0 <= ev_end[e]:  # in its window: pending lanes whose time has come close, or fail
                gamma, prob = ev_gamma[e], ev_prob[e]
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
        for i in range(m):  # contingent raise: may this lane raise?
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
        for listed_k in range(n_vec):
            logit = lane[L_DUE_BASE, listed_k] + lane[L_DUE_SLOPE, listed_k] * lane[L_DUE_LOG, listed_k]
            p_year = 1.0 / (1.0 + exp_lanes(-logit))
            lane[L_P_RAISE, listed_k] = 1.0 - exp_lanes(dt * log_lanes(1.0 - p_year))  # 1 - (1 - p_year)^dt
        for listed_k in range(n_due):  # without a branch: one on the draw mispredicted
            i = listed[listed_k]
            closes = lane[L_U_RAISE, i] < lane[L_P_RAISE, listed_k]
            size = fmin(theta[P_RAISE_MULTIPLE, i] * lane[L_RUN_RATE1, i], theta[P_RAISE_CAP, i]) if closes else 0.0
            lane[L_CASH, i] += size
            lane[L_RAISED_CONT, i] += size
            lane[L_N_RAISES, i] += 1.0 if closes else 0.0
            lane[L_LAST_RAISE, i] = t1 if closes else lane[L_LAST_RAISE, i]

        for i in range(m):  # SIMD: credit line, shortfall
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
            start_step(lane, theta, i)  # for the next step: here, its inputs are at hand
        if tracing:
            for i in range(m_out):
                steps[i, k, T_CASH] = lane[L_CASH, i]

        j += 1
        if j == spy:
            for i in range(m_out):
                annual[i, A_REV, y] = lane[L_Y_REV, i]
                annual[i, A_COGS, y] = lane[L_Y_COGS, i]
                annual[i, A_FCF, y] = lane[L_Y_FCF, i]
                annual[i, A_COMPUTE, y] = lane[L_Y_COMPUTE, i]
                annual[i, A_CASH, y] = lane[L_CASH, i]
                lane[L_Y_REV, i] = 0.0
                lane[L_Y_COGS, i] = 0.0
                lane[L_Y_FCF, i] = 0.0
                lane[L_Y_COMPUTE, i] = 0.0
            j = 0
            y += 1

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


@njit(inline="always", **_jit)
def start_step(lane, theta, i):
    """Lane i's decision at the start of a step, from its cash and trailing burn then: the runway rule's cut of
    flexible training. And the step's revenue sums set to 0."""
    burn = fmax(0.0, -lane[L_RING_SUM, i])
    runway_short = (burn > 0.0) & (lane[L_CASH, i] < theta[P_RUNWAY_FLOOR, i] * burn)
    lane[L_CUT, i] = theta[P_CUT_FACTOR, i] if runway_short else 1.0
    lane[L_REV, i] = 0.0
    lane[L_RUN_RATE1, i] = 0.0


@njit(inline="always", **_jit)
def curve_lift(seg, s, i, e0, dt):
    """Concave growth lifts the curve above its chord by ~ -G'' dt^2 / 12 on average: the factor, times dt (the
    step's length, a factor of its revenue). G'' at the step's middle is -kappa amp e0 exp(-kappa dt / 2),
    e0 = exp(-kappa t0); SG_CURV holds dt times all of it but e0."""
    return fma(seg[s, SG_CURV, i], e0, dt)


@njit(inline="always", **_jit)
def bridge_exponent(seg, s, i, bridge):
    """The bridge's average over the step is N(0, s^2 tau / 12); the constant s^2 tau / 24 makes the
    factor exp(this)'s mean exp(s^2 tau / 12), the mean of the integral of exp(bridge)."""
    return fma(seg[s, SG_BRIDGE_SD, i], bridge, seg[s, SG_BRIDGE_MEAN, i])


@njit(inline="always", **_jit)
def segment_step(seg, lane, s, i, d, ramp, weight):
    """Lane i's revenue from segment s over a step without a competition shock, and its run rate at the step's
    end, from the log growth d, ramp = (e^d - 1) / d and ``weight``, the step's length times the lift factors."""
    r0 = seg[s, SG_RATE, i]
    rate_ramp = r0 * ramp  # shared: r0 e^d = r0 + d r0 ramp
    lane[L_D, i] = d
    lane[L_WEIGHT, i] = weight
    lane[L_CONTRIB, i] = rate_ramp * weight
    lane[L_R1, i] = fma(d, rate_ramp, r0)


@njit(**_jit)
def simulate_block(seed, path_start, antithetic, spy, n_years, tables, form, loc_scale, drawn_slot, z_min, z_step,
                   chol_param, chol_first, seg_launch, share, tc_plan, committed, plan_rate, price_level, ev_start,
                   ev_end, ev_prob, ev_tranches, ev_period, ev_gamma, max_raises, initial_burn, chol_shock,
                   theta_params, theta_out, annual, scalars):
    """Simulate paths ``path_start .. path_start + n - 1`` (n = ``theta_out.shape[0]``) in parallel.

    theta_params : ndarray(int64, (c,)), the parameter (kernel order) of each column of theta_out: every drawn
    one (``ModelInputs.theta_params``), or those a run needs when it keeps no rows (``ModelInputs.keeping``);
    theta_out : ndarray(float64, (n, c)); annual : ndarray(float64, (n, len(ANNUAL_VARS), n_years));
    scalars : ndarray(float64, (n, len(SCALAR_VARS))). Row i holds path ``path_start + i``.
    """
    no_steps = np.empty((theta_out.shape[0], 0, len(STEP_VARS)))  # per-step values not wanted
    trace_block(seed, path_start, antithetic, spy, n_years, tables, form, loc_scale, drawn_slot, z_min, z_step,
                chol_param, chol_first, seg_launch, share, tc_plan, committed, plan_rate, price_level, ev_start, ev_end,
                ev_prob, ev_tranches, ev_period, ev_gamma, max_raises, initial_burn, chol_shock,
                theta_params, theta_out, annual, scalars, no_steps)


@njit(parallel=True, **_jit)
def trace_block(seed, path_start, antithetic, spy, n_years, tables, form, loc_scale, drawn_slot, z_min, z_step,
                chol_param, chol_first, seg_launch, share, tc_plan, committed, plan_rate, price_level, ev_start,
                ev_end, ev_prob, ev_tranches, ev_period, ev_gamma, max_raises, initial_burn, chol_shock,
                theta_params, theta_out, annual, scalars, steps):
    """Simulate paths ``path_start ..`` in parallel, recording every step in ``steps``
    (n, n_years * spy, len(STEP_VARS)); a second axis of length 0 records nothing (``simulate_block``).
    """
    if theta_out.shape[1] != theta_params.shape[0]:
        raise ValueError("theta_out needs one column per entry of theta_params")
    n = theta_out.shape[0]
    for t in prange((n + LANES - 1) // LANES):
        lo, hi = t * LANES, min(n, (t + 1) * LANES)
        simulate_tile(seed, path_start + lo, antithetic, spy, n_years, tables, form, loc_scale, drawn_slot,
                      z_min, z_step, chol_param, chol_first, seg_launch, share, tc_plan, committed, plan_rate,
                      price_level, ev_start, ev_end, ev_prob, ev_tranches, ev_period, ev_gamma, max_raises,
                      initial_burn, chol_shock, theta_params, theta_out[lo:hi], annual[lo:hi], scalars[lo:hi],
                      steps[lo:hi])


# Paths that the passes over a chunk's outputs (first_broken_path, summary._variable_rows) take at once: their
# outputs, ~270 bytes a path, stay in the L1 cache meanwhile.
OUTPUT_BLOCK = 64
# The largest magnitude an output may have. A finite output beyond it comes from a config that drives growth, prices
# or shocks past any meaning, and the summaries' squares and sums of it overflow (Python's ** raises): it is refused
# as an infinity is.
OUTPUT_LIMIT = 1e100


@njit(parallel=True, **_jit)
def first_broken_path(theta, annual, scalars, cash_col, cash_value):
    """(row, what, residual) of the first path that breaks an invariant, or (-1, 0, 0.0): ``what`` is 1, 2
    or 3 for a value in ``theta``, ``annual`` or ``scalars`` that is NaN or of magnitude OUTPUT_LIMIT or more, 4 for the cash identity (cash at
    the end = initial cash + sum of FCF + funding raised + credit outstanding, to 1e-9 of the flows'
    scale). The initial cash is ``theta[:, cash_col]``, or ``cash_value`` where ``cash_col`` < 0.
    Blocks of OUTPUT_BLOCK paths are tested in parallel, each as a whole in loops that compile to SIMD
    (path by path, the checks took as long as a twentieth of the kernel); a block that fails is then
    searched path by path."""
    theta, annual, scalars = np.ascontiguousarray(theta), np.ascontiguousarray(annual), np.ascontiguousarray(scalars)
    n = theta.shape[0]
    n_blocks = (n + OUTPUT_BLOCK - 1) // OUTPUT_BLOCK
    failed = np.zeros(n_blocks, np.bool_)
    for blk in prange(n_blocks):
        lo, hi = blk * OUTPUT_BLOCK, min(n, (blk + 1) * OUTPUT_BLOCK)
        finite = True
        for arr in (theta[lo:hi].ravel(), annual[lo:hi].ravel(), scalars[lo:hi].ravel()):
            for x in arr:
                finite &= abs(x) < OUTPUT_LIMIT  # false for NaN too
        holds = True
        for i in range(lo, hi):
            residual, tolerance = cash_identity(theta, annual, scalars, cash_col, cash_value, i)
            holds &= residual <= tolerance
        failed[blk] = not (finite and holds)
    for blk in range(n_blocks):
        for i in range(blk * OUTPUT_BLOCK, min(n, (blk + 1) * OUTPUT_BLOCK) if failed[blk] else 0):
            what, residual = broken_invariant(theta, annual, scalars, cash_col, cash_value, i)
            if what:
                return i, what, residual
    return -1, 0, 0.0


@njit(inline="always", **_jit)
def cash_identity(theta, annual, scalars, cash_col, cash_value, i):
    """(|cash at the end - initial cash - inflows|, the tolerance of first_broken_path) of path ``i``."""
    cash0 = theta[i, cash_col] if cash_col >= 0 else cash_value
    fcf = 0.0
    revenue = 0.0
    for y in range(annual.shape[2]):
        fcf += annual[i, A_FCF, y]
        revenue += abs(annual[i, A_REV, y])
    inflows = fcf + scalars[i, S_RAISED_SCHEDULED] + scalars[i, S_RAISED_CONTINGENT] + scalars[i, S_CREDIT_END]
    return abs(scalars[i, S_CASH_END] - cash0 - inflows), 1e-9 * (1.0 + abs(cash0) + revenue + abs(inflows))


@njit(inline="always", **_jit)
def broken_invariant(theta, annual, scalars, cash_col, cash_value, i):
    """(what, residual) of path ``i`` as in ``first_broken_path``; what = 0 where it holds."""
    for what, arr in ((1, theta[i].ravel()), (2, annual[i].ravel()), (3, scalars[i].ravel())):
        for x in arr:
            if not abs(x) < OUTPUT_LIMIT:
                return what, 0.0
    residual, tolerance = cash_identity(theta, annual, scalars, cash_col, cash_value, i)
    if residual > tolerance:
        return 4, residual
    return 0, 0.0
