"""The random-number generator: counter-based SplitMix64 streams keyed by (seed, path id), uniforms with 53 random
bits, standard normals by Marsaglia & Tsang's ziggurat; one path at a time, or a tile's lanes in SIMD loops.
A path's numbers depend on its id alone, so results do not depend on thread count, chunking or machine, and any
path can be replayed by its id."""

from __future__ import annotations

import math

import numpy as np

from .jit import jit
from .lanes import list_lanes

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_KEY_SALT = np.uint64(0x5DEECE66D2B7E151)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@jit(forceinline=True)
def mix64(z):
    """SplitMix64 finaliser (a bijection of uint64 with full avalanche)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@jit(forceinline=True)
def path_key(seed, path_id):
    """Start of the stream of path ``path_id`` under ``seed``."""
    return mix64(mix64(np.uint64(seed) ^ _KEY_SALT) + np.uint64(path_id) * GOLDEN)


@jit(forceinline=True)
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


@jit(forceinline=True)
def ziggurat_parts(bits):
    """(layer, sign, x >= 0) of a ziggurat candidate from 64 random bits: the low 8 bits pick the layer,
    bit 8 the sign, the top 53 bits the position in the layer. ``x < ZIG_X[layer + 1]`` accepts it
    (~99% of the time)."""
    layer = int(bits & np.uint64(255))
    sign = 1.0 if (bits >> np.uint64(8)) & np.uint64(1) else -1.0
    return layer, sign, float(np.int64(bits >> np.uint64(11))) * _TO_UNIT * ZIG_X[layer]


@jit(forceinline=True)
def next_normal(state):
    """(new state, standard normal) by the ziggurat: one 64-bit draw ~99% of the time."""
    state = state + GOLDEN
    bits = mix64(state)
    layer, sign, x = ziggurat_parts(bits)
    if x < ZIG_X[layer + 1]:
        return state, sign * x
    return normal_rejected(state, bits)


@jit
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



@jit(forceinline=True)
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


@jit(forceinline=True)
def lane_uniform(states, signs, i):
    """The next uniform of lane i's stream, mirrored (1 - u) where ``signs[i]`` < 0."""
    state = states[i] + GOLDEN
    states[i] = state
    u = float(np.int64(mix64(state) >> np.uint64(11))) * _TO_UNIT
    return 1.0 - u if signs[i] < 0.0 else u


@jit(forceinline=True)
def uniforms_lanes(states, signs, out, m):
    """out[i] = ``lane_uniform`` of lane i, for i < m."""
    for i in range(m):
        out[i] = lane_uniform(states, signs, i)

