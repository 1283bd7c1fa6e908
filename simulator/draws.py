"""The model's draws over a tile's lanes: correlated normal scores (a Cholesky factor), parameter values from
quantile tables or closed forms, Poisson event counts."""

from __future__ import annotations

import numpy as np

from .fastmath import exp_lanes, fmax, fmin
from .intrinsics import fma
from .jit import jit
from .lanes import list_lanes
from .layout import FORM_EXP
from .rng import lane_uniform


@jit(forceinline=True)
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


@jit(forceinline=True)
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


@jit(forceinline=True)
def closed_form_lanes(form, loc, scale, z, z_min, z_max, out, m):
    """out[i] = loc + scale z[i], or its exp for ``FORM_EXP``, for i < m: a normal or lognormal parameter at
    normal score z, clamped to the tables' grid [z_min, z_max] as ``interp_lanes`` clamps it."""
    if form == FORM_EXP:
        for i in range(m):
            out[i] = exp_lanes(loc + scale * fmin(fmax(z[i], z_min), z_max))
    else:
        for i in range(m):
            out[i] = loc + scale * fmin(fmax(z[i], z_min), z_max)


@jit(forceinline=True)
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


@jit(forceinline=True)
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

