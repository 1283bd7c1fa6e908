"""Helpers for loops over a tile's lanes: the lanes whose flag is set, and counts rounded to whole vectors."""

from __future__ import annotations

import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from .jit import jit


@jit(forceinline=True)
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



@jit(forceinline=True)
def whole_vectors(n):
    """n rounded up to whole vectors of 8 lanes: a SIMD loop over n listed lanes' inputs, copied side by
    side (the rest padded with copies of the last), runs without a scalar remainder."""
    return (n + 7) // 8 * 8

