"""Checks of a chunk's outputs: no NaN or extreme value, and the cash identity, path by path."""

from __future__ import annotations

import numpy as np
from numba import prange

from .jit import jit
from .layout import (
    A_FCF,
    A_REV,
    OUTPUT_BLOCK,
    OUTPUT_LIMIT,
    S_CASH_END,
    S_CREDIT_END,
    S_RAISED_CONTINGENT,
    S_RAISED_SCHEDULED,
)


@jit(parallel=True)
def first_broken_path(theta, annual, scalars, cash_col, cash_value):
    """(row, what, residual) of the first path that breaks an invariant, or (-1, 0, 0.0): ``what`` is 1, 2
    or 3 for a value in ``theta``, ``annual`` or ``scalars`` that is NaN or of magnitude OUTPUT_LIMIT or more, 4
    for the cash identity (cash at the end = initial cash + sum of FCF + funding raised + credit outstanding, to
    1e-9 of the flows' scale). The initial cash is ``theta[:, cash_col]``, or ``cash_value`` where ``cash_col`` < 0.
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


@jit(inline="always")
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


@jit(inline="always")
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
