"""The distribution of one summary variable over the paths, exact or streamed.

``SortedSample`` holds every value (exact order statistics). ``HistogramSample`` holds a
histogram accumulated chunk by chunk with bin edges taken from a pilot sample (each moved to the start of
the lookup grid's cell nearest to it, so that a value's bin is read off the grid: ``bin_edges``): per bin the
count (and, for the variables whose tail means the summaries read, the sum and sum of squares); the
sum and sum of squares of all values; and the least value below the first edge and the greatest at or
above the last finite one, which bound the two end bins. A quantile read from it lies within the bin
holding its rank, so its *rank error* is at most that bin's share of the paths (zero where the bin
can hold one value only: a value that recurs gets such a bin); ``rank_error`` reports it. (Per-bin
minima and maxima would narrow a bin's range a little, at the cost of a third of the time histograms
take; per-bin sums cost ~2.5 ns a value on two threads, counts alone ~1.)

Both answer the same questions, so the summary code (``stats``, ``summary``) serves both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import prange

from .intrinsics import bits_as_float, float_as_bits, prefetch
from .jit import jit
from .layout import BLOCK_PATHS

# Path ids 0 .. PILOT_PATHS - 1 fix the bin edges, ~BINS bins a variable of 16 pilot values each. A quantile's
# stated rank error is its bin's share of the run: ~1/BINS, but a bin's share varies with the few pilot values
# that placed its edges (by ~25% with 16) and with the move of its edges to cell starts. The reported
# quantiles' largest rank error on the default config, 10^6 and 10^7 paths, seeds 7 and 8: 5.9e-5 to 6.8e-5
# with these (4.9e-5 to 6.0e-5 with the edges unmoved); 1.0e-4 to 1.1e-4 with 2^14 bins of 32 (pilot 2^19) and
# 9.5e-5 to 1.23e-4 with 2^15 bins of 4 (pilot 2^17), over the 1e-4 (edges unmoved).
PILOT_PATHS = 1 << 19
BINS = 1 << 15          # bins per variable: ~3e-5 of the paths each
GRID_CELLS = 1 << 17    # cells of the lookup grid that finds a value's bin: ~4 per bin


class SortedSample:
    """Every value of the variable, sorted; ``paired`` (antithetic runs) keeps the path order too,
    for standard errors from pair averages. ``ordered``: the values already sorted (``sorted_rows``)."""

    def __init__(self, values: np.ndarray, paired: bool = False, ordered: np.ndarray | None = None):
        self.values = values if paired else None
        self.sorted = np.sort(values) if ordered is None else ordered
        self.n = self.sorted.size
        self.total = float(np.sum(values))
        self.total_sq = float(np.sum(values * values))

    def value_at(self, rank: int) -> float:
        return float(self.sorted[rank])

    def rank_error(self, rank: int) -> float:
        return 0.0

    def top_moments(self, k: int) -> tuple[float, float]:
        """Mean and variance (ddof 1) of the ``k`` largest values."""
        top = self.sorted[self.n - k:]
        return float(top.mean()), float(top.var(ddof=1)) if k > 1 else 0.0

    def below(self, x: float) -> tuple[int, float]:
        """Count and sum of the values <= x."""
        k = int(np.searchsorted(self.sorted, x, side="right"))
        return k, float(self.sorted[:k].sum())


class WeightedSample:
    """Every value with its path's likelihood weight (a run updated on reported figures: ``simulator.actuals``).

    It answers ``stats``' questions as an unweighted sample of ``n`` = Kish's effective sample size would: rank r
    is the weighted quantile at (r + 1) / n (the least value whose share of the weight below or at it reaches
    that), totals are n times the weighted moments, so the standard errors and intervals of ``stats`` are those of
    ``n`` independent paths. NaN values (see ``summary.UNDEFINED_VAR``) are left out and counted in ``missing``."""

    values = None  # no antithetic pairs: a run with actuals draws independent paths

    def __init__(self, values: np.ndarray, weights: np.ndarray):
        defined = ~np.isnan(values)
        self.missing = int(values.size - np.count_nonzero(defined))
        x, w = values[defined], weights[defined]
        # Stable: equal values keep their path order on every machine, so the weights' running sums (and the
        # figures read from them) are the same to the bit whatever sort a machine's numpy uses.
        order = np.argsort(x, kind="stable")
        self.sorted, w = x[order], w[order]
        self.cum = np.cumsum(w)
        self.cum_x = np.cumsum(w * self.sorted)
        self.weight = float(self.cum[-1]) if x.size else 0.0
        squares = float(np.sum(w * w))
        self.ess = self.weight * self.weight / squares if squares > 0 else 0.0
        self.n = max(1, round(self.ess)) if self.weight > 0 else 0
        mean = float(self.cum_x[-1]) / self.weight if self.weight > 0 else math.nan
        self.total = self.n * mean
        self.total_sq = self.n * float(np.sum(w * self.sorted * self.sorted)) / self.weight if self.weight > 0 \
            else math.nan

    def unweighted(self) -> SortedSample:
        """The same paths' values without their weights (NaN last): the prior's sample of a posterior run."""
        values = np.concatenate([self.sorted, np.full(self.missing, np.nan)])
        return SortedSample(values, ordered=values)

    def at(self, share: float) -> float:
        """The least value with at least ``share`` of the weight at or below it."""
        i = int(np.searchsorted(self.cum, share * self.weight, side="left"))
        return float(self.sorted[min(i, self.sorted.size - 1)])

    def value_at(self, rank: int) -> float:
        return self.at((rank + 1) / self.n)

    def rank_error(self, rank: int) -> float:
        return 0.0

    def top_moments(self, k: int) -> tuple[float, float]:
        """Weighted mean and variance of the top ``k / n`` of the weight (the value at the cut in part)."""
        tail = k / self.n * self.weight
        start = int(np.searchsorted(self.cum, self.weight - tail, side="right"))
        x, w = self.sorted[start:], np.diff(self.cum[start - 1:] if start > 0 else np.r_[0.0, self.cum])
        w = w.copy()
        w[0] = self.cum[start] - (self.weight - tail)  # the share of the value at the cut inside the tail
        mean = float(np.sum(w * x) / np.sum(w))
        var = float(np.sum(w * (x - mean) ** 2) / np.sum(w)) * (k / (k - 1) if k > 1 else 0.0)
        return mean, var

    def below(self, x: float) -> tuple[float, float]:
        """Weighted count and sum of the values <= x, in units of ``n`` paths."""
        j = int(np.searchsorted(self.sorted, x, side="right"))
        if j == 0:
            return 0.0, 0.0
        return self.n * float(self.cum[j - 1]) / self.weight, self.n * float(self.cum_x[j - 1]) / self.weight


class HistogramSample:
    """A streamed histogram of one variable (see the module docstring)."""

    def __init__(self, edges, counts, sums, sums_sq, total: float, total_sq: float, tail_min: float,
                 tail_max: float):
        """``sums`` and ``sums_sq`` per bin, or None where only the counts were kept (see ``Accumulator``)."""
        self.edges, self.counts, self.sums, self.sums_sq = edges, counts, sums, sums_sq
        self.total, self.total_sq = total, total_sq
        self.tail_min, self.tail_max = tail_min, tail_max  # bin 0's least value, the top bin's greatest
        self.top = top_bin(edges)
        self.cum = np.cumsum(counts)
        self.n = int(self.cum[-1])

    def _bin_sums(self, what: str):
        if self.sums is None:
            raise ValueError(f"{what} needs the sums within the histogram's bins, which this variable's histogram "
                             "does not keep (summary.needs_bin_sums)")
        return self.sums, self.sums_sq

    def _bin(self, rank: int) -> int:
        return int(np.searchsorted(self.cum, rank, side="right"))

    def _range(self, b: int) -> tuple[float, float]:
        """The least and the greatest value bin ``b`` can hold: from its lower edge to the float before its upper
        one, or to the end bins' extreme values; NaN past the top bin (those hold NaN only: see
        histogram_shape)."""
        if b > self.top:
            return math.nan, math.nan
        lo = self.edges[b - 1] if b > 0 else self.tail_min
        hi = np.nextafter(self.edges[b], -np.inf) if b < self.top else self.tail_max
        return float(lo), float(hi)

    def value_at(self, rank: int) -> float:
        b = self._bin(rank)
        (lo, hi), c = self._range(b), self.counts[b]
        if not lo < hi:
            return lo
        within = rank - (self.cum[b] - c)  # 0 .. c-1
        return float(lo + (within + 0.5) / c * (hi - lo))

    def rank_error(self, rank: int) -> float:
        b = self._bin(rank)
        lo, hi = self._range(b)
        return float(self.counts[b]) / self.n if lo < hi else 0.0

    def top_moments(self, k: int) -> tuple[float, float]:
        """Mean and variance of the ``k`` largest values; the bin split by rank n-k counts with its mean."""
        sums, sums_sq = self._bin_sums("a tail mean")
        total = total_sq = 0.0
        left = k
        for b in range(len(self.counts) - 1, -1, -1):
            c = self.counts[b]
            if c == 0:
                continue
            take = min(left, c)
            total += sums[b] * take / c
            total_sq += sums_sq[b] * take / c
            left -= take
            if left == 0:
                break
        mean = total / k
        var = max(0.0, (total_sq - k * mean * mean) / (k - 1)) if k > 1 else 0.0
        return mean, var

    def below(self, x: float) -> tuple[int, float]:
        """Count and sum of the values <= x; the bin holding x counts in proportion to its range."""
        sums = self._bin_sums("a sum below a value")[0]
        b = int(np.searchsorted(self.edges, x, side="right"))
        count = int(self.cum[b] - self.counts[b])
        total = float(sums[:b].sum())
        (lo, hi), c = self._range(b), self.counts[b]
        if c and x >= lo:
            share = 1.0 if hi <= x or hi == lo else (x - lo) / (hi - lo)
            count += int(round(share * c))
            total += share * sums[b]
        return count, total


def pilot_edges(values: np.ndarray) -> np.ndarray:
    """Bin edges for each row of the pilot (variables, paths): every k-th distinct order statistic, ~BINS bins.

    A value that carries at least 1/BINS of the pilot (zero funding gaps, cash held exactly at the
    floor by the credit line) gets a bin of its own, [v, next float after v), so it is exact.
    """
    edges, sizes = _pilot_rows(sorted_rows(values))
    return np.ascontiguousarray(edges[:, :sizes.max()])  # rows padded with +inf to the widest: empty bins


def bin_edges(pilot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The histograms' edges and grid axes (see ``lookup_grids``) for the pilot (variables, paths): its edges
    (``pilot_edges``), each moved to the least float of its grid cell or of the next, whichever is nearer, so
    that most cells need no comparison to find a value's bin. Kept where they are: the two edges around a value
    that recurs (it keeps its exact bin), an edge in the end cells or the one before the top, and an edge whose
    cell already starts with the edge below it. A bin gains or loses at most half a cell's values at either
    end (~4 cells a bin)."""
    exact = pilot_edges(pilot)
    axes = grid_axes(exact)
    edges = np.empty_like(exact)
    _cell_start_rows(exact, axes, GRID_CELLS - 1.0, edges)
    return edges, axes


@jit(parallel=True)
def _cell_start_rows(exact, axes, top, out):
    """bin_edges' moves into ``out``, rows in parallel."""
    for v in prange(exact.shape[0]):
        e, axis = exact[v], axes[v]
        for j in range(e.shape[0]):
            x = e[j]
            out[v, j] = x
            if not np.isfinite(x):
                continue
            g = grid_cell(x, axis, top)
            recurs = ((j + 1 < e.shape[0] and e[j + 1] == np.nextafter(x, np.inf))
                      or (j > 0 and e[j - 1] == np.nextafter(x, -np.inf)))
            if 0 < g < top - 1 and not recurs:
                # The nearer of its cell's start and the next cell's first, so that a bin's share changes by
                # half a cell at most; either only between the edges on either side.
                up = grid_position(x, axis) - g >= 0.5
                for cell in (g + up, g + 1 - up):
                    start = _cell_start(axis, top, cell)
                    if (j == 0 or start > out[v, j - 1]) and (j + 1 == e.shape[0] or start < e[j + 1]):
                        out[v, j] = start
                        break


@jit
def _cell_start(axis, top, g):
    """The least float in a cell >= g > 0 of the grid: from the float ``grid_position`` puts near the cell's
    start, steps doubling over the floats in their order until they pass it, then a bisection (a bisection over
    all floats took 64 steps an edge, ~0.4 s for a pilot's)."""
    lowest, highest = _float_rank(-np.inf), _float_rank(np.inf)  # cells 0 and top: the answer lies between
    guess = _float_rank(_near_position(g, axis)) if g < top else highest
    guess = min(max(guess, lowest), highest)
    # The ranks span most of int64: no difference of two is formed, nor a sum past either end.
    lo, hi, step = guess, guess, 1
    if grid_cell(_float_of_rank(guess), axis, top) >= g:
        while lo > lowest and grid_cell(_float_of_rank(lo), axis, top) >= g:
            hi, lo = lo, lo - step if lo > lowest + step else lowest
            step = min(2 * step, 1 << 61)
    else:
        while grid_cell(_float_of_rank(hi), axis, top) < g:
            lo, hi = hi, hi + step if hi < highest - step else highest
            step = min(2 * step, 1 << 61)
    while hi - 1 > lo:  # cell(lo) < g <= cell(hi)
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)
        if grid_cell(_float_of_rank(mid), axis, top) >= g:
            hi = mid
        else:
            lo = mid
    return _float_of_rank(hi)


@jit
def _near_position(position, axis):
    """A float whose ``grid_position`` is about ``position``: grid_key inverted, rounding aside."""
    key = position / axis[3] + axis[2]
    if axis[1] == math.inf:
        return key + axis[0]
    if not abs(key) < 9.2e18:  # beyond int64: where grid_key is about log2, far out in a tail
        return math.copysign(math.inf, key)
    gap = bits_as_float(float_as_bits(axis[1]) + np.int64(abs(key))) - axis[1]
    return axis[0] + math.copysign(gap, key)


_MAGNITUDE = np.int64(0x7FFFFFFFFFFFFFFF)


@jit(forceinline=True)
def _float_rank(x):
    """An int64 in the order of the floats (x not NaN): their bits, with the magnitude's flipped below zero."""
    b = float_as_bits(x)
    return b if b >= 0 else b ^ _MAGNITUDE


@jit(forceinline=True)
def _float_of_rank(r):
    return bits_as_float(r if r >= 0 else r ^ _MAGNITUDE)


@jit(parallel=True)
def _pilot_rows(ordered):
    """pilot_edges of sorted rows, rows in parallel: the edges padded with +inf, and each row's count. Two
    passes, so that no array is much larger than the edges (on the benchmark VM a page fault costs ~2-8 us)."""
    n_rows, n = ordered.shape
    distinct, atoms = np.empty(n_rows, np.int64), np.empty(n_rows, np.int64)
    for r in prange(n_rows):
        distinct[r], atoms[r] = _runs(ordered[r])
    step = np.maximum(1, -(-distinct // BINS))
    picked_max = distinct // step + 2 * atoms  # edges before repeats are dropped
    edges = np.full((n_rows, picked_max.max()), np.inf)
    sizes = np.empty(n_rows, np.int64)
    for r in prange(n_rows):
        sizes[r] = _row_edges(ordered[r], step[r], picked_max[r], edges[r])
    return edges, sizes


@jit(forceinline=True)
def _starts_run(ordered, i):
    """Whether ordered[i] (i >= 1) differs from the value before it (NaNs are one value)."""
    x, before = ordered[i], ordered[i - 1]
    return x != before and not (x != x and before != before)


@jit
def _runs(ordered):
    """Distinct values of a sorted row, and how many of them are atoms (at least 1/BINS of the row)."""
    n = ordered.size
    distinct = atoms = 0
    start = 0
    for i in range(1, n + 1):
        if i == n or _starts_run(ordered, i):
            distinct += 1
            atoms += (i - start) * BINS >= n
            start = i
    return distinct, atoms


@jit
def _row_edges(ordered, step, picked_max, out):
    """Edges of one sorted row into ``out``; returns how many. As np.unique would find them: every
    ``step``-th distinct value (the first of equals), each atom and the next float after it, in order
    without repeats (NaNs as one)."""
    n = ordered.size
    picked = np.empty(picked_max)
    m = k = start = 0
    pick = step  # the next k picked: k % step == 0 without a division a value (_pilot_rows 0.042 -> 0.033 s)
    for i in range(1, n + 1):
        if i == n or _starts_run(ordered, i):  # the run of distinct value k is ordered[start:i]
            if k == pick:
                picked[m] = ordered[start]
                m += 1
                pick += step
            if (i - start) * BINS >= n:
                picked[m] = ordered[start]
                picked[m + 1] = np.nextafter(ordered[start], np.inf)
                m += 2
            k += 1
            start = i
    picked = np.sort(picked[:m])  # NaN last, as numpy's
    size = 0
    for i in range(m):
        x = picked[i]
        if size == 0 or (x != out[size - 1] and not (x != x and out[size - 1] != out[size - 1])):
            out[size] = x
            size += 1
    return size


def sorted_rows(values: np.ndarray) -> np.ndarray:
    """Each row sorted (NaN last, as np.sort; -0.0 before 0.0 and one NaN, so that the order is bitwise the same
    on every machine whatever np.sort does with equal floats): the floats' ranks (``_float_rank``) sorted by
    np.sort, rows in numba's thread count (np.sort releases the GIL). With its SIMD sort, 28 rows of 2^19 take
    ~0.14 s on two Zen 3 threads, 28 of 10^6 ~0.25 s; the LSD radix sort in numba it replaced 0.20 s and 0.40 s."""
    ranks = np.empty(values.shape, np.int64)
    _to_ranks(values, ranks)
    with ThreadPoolExecutor(numba.get_num_threads()) as pool:
        list(pool.map(np.ndarray.sort, ranks))
    return _from_ranks(ranks)


_NAN_RANK = np.iinfo(np.int64).max  # above +inf's rank


@jit(parallel=True)
def _to_ranks(values, ranks):
    for r in prange(values.shape[0]):
        for i in range(values.shape[1]):
            x = values[r, i]
            ranks[r, i] = _NAN_RANK if x != x else _float_rank(x)


@jit(parallel=True)
def _from_ranks(ranks):
    """The floats of ``ranks``, in their memory."""
    out = ranks.view(np.float64)
    for r in prange(ranks.shape[0]):
        for i in range(ranks.shape[1]):
            k = ranks[r, i]
            out[r, i] = np.nan if k == _NAN_RANK else _float_of_rank(k)
    return out


class Accumulator:
    """Histograms of several variables, fed chunk by chunk in path-id order.

    ``with_sums[v]``: whether variable v keeps the sum and sum of squares of each bin (tail means read them);
    the others keep each bin's count only. Every variable keeps its values' sum and sum of squares (NaN left out).

    Counts and the end bins' extreme values are exact whatever the order. Float sums are accumulated per block of
    ``BLOCK_PATHS`` path ids, in path order, and a finished block is added to the totals: the result
    is the same for any chunking of the paths (and for blocks computed elsewhere, in block order).
    """

    def __init__(self, names: Sequence[str], edges: np.ndarray, axes: np.ndarray, with_sums):
        self.names = names
        self.edges = edges
        self.with_sums = np.array(with_sums, dtype=bool)
        self.rows = sum_rows(self.with_sums)  # each variable's row in the per-bin sums, or -1
        self.grid = lookup_grids(edges, axes)
        self.counts, self.sums, self.sums_sq, self.totals = empty_histograms(edges, self.with_sums)
        self.tail_min = np.full(len(names), np.inf)
        self.tail_max = np.full(len(names), -np.inf)
        self._block = (np.zeros_like(self.sums), np.zeros_like(self.sums_sq), np.zeros_like(self.totals))
        self.next_id = 0

    def add(self, values: np.ndarray, first_id: int) -> None:
        """Add the paths ``first_id ..`` (columns of ``values``, one row per variable); they must
        follow the previous call's paths."""
        if first_id != self.next_id:
            raise ValueError(f"paths must arrive in order: expected id {self.next_id}, got {first_id}")
        n = values.shape[1]
        start = 0
        while start < n:
            pid = first_id + start
            stop = min(n, start + BLOCK_PATHS - pid % BLOCK_PATHS)
            _bin_rows(values[:, start:stop], self.edges, *self.grid, self.rows, self.counts, *self._block,
                      self.tail_min, self.tail_max)
            start = stop
            if (first_id + stop) % BLOCK_PATHS == 0:
                self._fold()
        self.next_id = first_id + n

    def arrays(self) -> dict[str, np.ndarray]:
        """Complete state, for saving an interrupted run (the lookup grid is rebuilt from the edges and axes)."""
        return {"edges": self.edges, "axes": self.grid[0], "with_sums": self.with_sums, "counts": self.counts,
                "sums": self.sums, "sums_sq": self.sums_sq, "totals": self.totals, "tail_min": self.tail_min,
                "tail_max": self.tail_max, "block_sums": self._block[0], "block_sums_sq": self._block[1],
                "block_totals": self._block[2], "next_id": np.array(self.next_id)}

    @classmethod
    def from_arrays(cls, names: list[str], arrays: dict[str, np.ndarray]) -> "Accumulator":
        acc = cls(names, arrays["edges"], arrays["axes"], arrays["with_sums"])
        for key in ("counts", "sums", "sums_sq", "totals", "tail_min", "tail_max"):
            getattr(acc, key)[:] = arrays[key]
        for block, key in zip(acc._block, ("block_sums", "block_sums_sq", "block_totals")):
            block[:] = arrays[key]
        acc.next_id = int(arrays["next_id"])
        return acc

    def merge_block(self, first_id: int, n: int, part: tuple) -> None:
        """Add the paths ``first_id .. first_id + n - 1``, binned elsewhere by :func:`block_histograms`
        (one block: ``first_id`` on a block boundary, at most ``BLOCK_PATHS`` paths). The result is
        bit-identical to ``add`` of those paths' values."""
        if first_id != self.next_id or first_id % BLOCK_PATHS or not 0 < n <= BLOCK_PATHS:
            raise ValueError(f"a block must start at the next id {self.next_id} on a block boundary, "
                             f"got {first_id} (+{n})")
        counts, sums, sums_sq, totals, tail_min, tail_max = part
        self.counts += counts
        # The earlier path's value wins ties (0.0 and -0.0), as in add.
        np.copyto(self.tail_min, tail_min, where=tail_min < self.tail_min)
        np.copyto(self.tail_max, tail_max, where=tail_max > self.tail_max)
        for block, partial in zip(self._block, (sums, sums_sq, totals)):
            block[:] += partial  # the block sums start from zero: this copies them exactly
        self.next_id = first_id + n
        if self.next_id % BLOCK_PATHS == 0:
            self._fold()

    def _fold(self) -> None:
        for total, block in zip((self.sums, self.sums_sq, self.totals), self._block):
            _fold_block(total, block)

    def finish(self) -> dict[str, HistogramSample]:
        self._fold()
        samples = {}
        for v, (name, r) in enumerate(zip(self.names, self.rows)):
            bin_sums, bin_sums_sq = (self.sums[r], self.sums_sq[r]) if r >= 0 else (None, None)
            samples[name] = HistogramSample(self.edges[v], self.counts[v], bin_sums, bin_sums_sq, self.totals[v, 0],
                                            self.totals[v, 1], self.tail_min[v], self.tail_max[v])
        return samples


def block_histograms(edges: np.ndarray, axes: np.ndarray, with_sums: np.ndarray, values: np.ndarray) -> tuple:
    """Histogram partials (counts; sums and sums of squares, per bin where ``with_sums``, and in all; the end
    bins' extreme values) of one block of paths (columns of ``values``, in path order), accumulated exactly as
    ``Accumulator.add`` does inside a block; for ``Accumulator.merge_block``. ``edges``, ``axes`` (see
    ``lookup_grids``) and ``with_sums``: the accumulator's, so that a block need not search for the axes again."""
    grid = lookup_grids(edges, axes)
    counts, sums, sums_sq, totals = empty_histograms(edges, with_sums)
    tail_min, tail_max = np.full(len(edges), np.inf), np.full(len(edges), -np.inf)
    _bin_rows(values, edges, *grid, sum_rows(with_sums), counts, sums, sums_sq, totals, tail_min, tail_max)
    return counts, sums, sums_sq, totals, tail_min, tail_max


def empty_histograms(edges: np.ndarray, with_sums: np.ndarray) -> tuple:
    """Zero counts (variables, bins), sums and sums of squares (variables ``with_sums``, bins), totals
    (variables, [sum, sum of squares])."""
    shape = histogram_shape(edges)
    sums_shape = (int(np.count_nonzero(with_sums)), shape[1])
    return np.zeros(shape, np.int64), np.zeros(sums_shape), np.zeros(sums_shape), np.zeros((shape[0], 2))


def sum_rows(with_sums: np.ndarray) -> np.ndarray:
    """Each variable's row in the per-bin sums, -1 where it has none."""
    return np.where(with_sums, np.cumsum(with_sums) - 1, -1)


def histogram_shape(edges: np.ndarray) -> tuple[int, int]:
    """Per variable (row of ``edges``), a bin below, between and above its edges, and one for NaN: NaN is
    not ordered, so it must not share a bin with numbers."""
    return edges.shape[0], edges.shape[1] + 2


def lookup_grids(edges: np.ndarray, axes: np.ndarray | None = None):
    """Per variable, a grid over its finite edges, uniform in ``grid_key`` (see there): ``axes[v]`` holds
    the key's centre and scale and the grid's origin and cells per key unit; ``grid[v, g]`` tells the bin of
    the values in cell g, cells as :func:`grid_cell` computes them: ``grid[v, g] >> 1`` edges are <= every
    value of the cell, and where the low bit is set the edges that follow may be too (compare them).

    ``grid_cell`` is monotone, so the edges of the cells below g are below any value in cell g and those of the
    cells above are above it. A cell whose only edge is its least float (``bin_edges`` puts most edges there)
    needs no comparison: its values' bin is read off the grid. Cells with other edges (a value that recurs,
    two edges in one cell) and the end cells (NaN, infinities, values beyond the grid) are marked.

    ``axes`` given (from an earlier call with these edges, or ``bin_edges``) skips their search (``grid_axes``)."""
    axes = grid_axes(edges) if axes is None else np.array(axes)  # a copy: Dask's may be read-only
    # 16 bits where the count and the mark fit (fewer than 2^15 edges: BINS of them unless values recur), else 32:
    # half the cache footprint (binning 28 variables, one thread: ~200 -> ~180 ns a path).
    grid = np.zeros((edges.shape[0], GRID_CELLS), np.uint16 if edges.shape[1] < 1 << 15 else np.uint32)
    _fill_grids(edges, axes, grid)
    return axes, grid


def grid_axes(edges: np.ndarray) -> np.ndarray:
    """``lookup_grids``' axes for these edges, one row per variable."""
    axes = np.zeros((edges.shape[0], 4))
    _search_axes(edges, _SCALE_EXPONENTS, axes)
    return axes


@jit(parallel=True)
def _fill_grids(edges, axes, grid):
    """lookup_grids' grids, variables in parallel."""
    for v in prange(edges.shape[0]):
        _fill_grid(edges[v], axes[v], grid[v])


@jit(parallel=True)
def _search_axes(edges, exponents, axes):
    """grid_axes' work, variables in parallel."""
    for v in prange(edges.shape[0]):
        finite = edges[v][np.isfinite(edges[v])]
        if finite.size >= 2 and finite[-1] > finite[0]:  # else scale 0: every value is in cell 0
            # Centred on 0 (suits a positive skewed variable) or on the median (a tail far from 0); spanning
            # every edge, or, where that crowds a tenth of them, leaving the outermost 1 in 1,000 (then 1 in
            # 100) at either end to the end cells: a few far outliers (20 values of 1e30 among 131,072, or the
            # edge -1.8e308 after an atom at -inf) otherwise left the bulk in one cell whatever the scale,
            # and binning scanned ~16,000 edges a value.
            fewest = -1
            for trim in (0, finite.size // 1000, finite.size // 100):
                lo, hi = finite[trim], finite[-1 - trim]
                if fewest >= 0 and (trim == 0 or fewest <= finite.size // (10 * AXIS_STRIDE) or not hi > lo):
                    continue
                for centre in (0.0, finite[finite.size // 2]):
                    binade = math.frexp(max(abs(lo - centre), abs(hi - centre)))[1]
                    axis, crowded = _best_axis(finite, lo, hi, centre, exponents + binade)
                    if fewest < 0 or crowded < fewest:
                        axes[v, :] = axis
                        fewest = crowded


# The key's scale c: inf (the grid is linear in the value), or 2^k for every other k from the binade of the
# largest |edge - centre| on the grid down to 60 binades below it. lookup_grids keeps the one that leaves the
# fewest edges sharing a cell, counted on every AXIS_STRIDE-th edge and a grid that many times coarser (the
# same crowding, found faster).
_SCALE_EXPONENTS = np.arange(0, -61, -2)
AXIS_STRIDE = 8


@jit(forceinline=True)
def grid_key(x, axis):
    """A monotone function of x: x - centre in units of ulp(c) where |x - centre| << c, and ~log2 of
    |x - centre| where it is >> c (``axis`` = centre, c, ...; NaN stays NaN). A grid uniform in it keeps
    its resolution in a distribution's bulk and follows a heavy tail (on a grid uniform in x, a lognormal
    with sigma 3 put most values in cells of many edges, and binning took ~100x as long)."""
    d = x - axis[0]
    if axis[1] == math.inf:  # linear: the value itself
        return d
    bits = float_as_bits(abs(d) + axis[1]) - float_as_bits(axis[1])  # in [0, 2^63)
    # As float(bits), in two exact halves and one rounding: AVX2 converts 32-bit integers, not 64-bit ones, so
    # only so does the binning's first loop compile to SIMD without AVX-512 (2.5 -> 1.8 ns a value on a Zen 3).
    key = math.copysign(float(np.int32(bits >> 32)) * 4294967296.0 + float(np.uint32(bits & 0xFFFFFFFF)), d)
    return key if d == d else d


@jit(forceinline=True)
def grid_cell(x, axis, top):
    """The grid cell of x: 0 .. top, monotone in x (NaN: 0). ``axis`` = centre, c, origin, scale. A 32-bit
    integer, for SIMD without AVX-512 (see grid_key)."""
    pos = grid_position(x, axis)
    return np.int32(pos if pos < top else top) if pos > 0.0 else np.int32(0)


@jit(forceinline=True)
def grid_position(x, axis):
    """Where x lies on the grid, in cells: its cell is the integer part, clamped to 0 .. top."""
    return (grid_key(x, axis) - axis[2]) * axis[3]


@jit
def _best_axis(finite, lo, hi, centre, exponents):
    """lookup_grids' axis for sorted finite edges, a grid spanning lo .. hi (edges beyond fall in its end
    cells) and a centre: the key's scale, inf or 2^k for k in ``exponents``, that leaves the fewest edges
    in cells of several (the first of equals); and that count."""
    crowded = np.empty(exponents.size + 1, np.int64)
    axes = np.empty((exponents.size + 1, 4))
    cells = GRID_CELLS // AXIS_STRIDE
    for t in range(exponents.size + 1):
        axis = axes[t]
        axis[0], axis[1], axis[2], axis[3] = centre, math.ldexp(1.0, exponents[t - 1]) if t else math.inf, 0.0, 1.0
        key_lo, key_hi = grid_key(lo, axis), grid_key(hi, axis)
        axis[2], axis[3] = key_lo, cells / (key_hi - key_lo) if key_hi > key_lo else 0.0
        k, run, prev = 0, 0, -1
        for x in finite[::AXIS_STRIDE]:
            g = grid_cell(x, axis, cells - 1.0)
            k += run if (g != prev) & (run > 1) else 0
            run = run + 1 if g == prev else 1
            prev = g
        crowded[t] = k + (run if run > 1 else 0)
    # The grid linear in the value (scale inf) is cheaper to look up: kept unless a scale spares 1% of the edges.
    t = 0 if crowded[0] <= np.min(crowded) + finite.size // (100 * AXIS_STRIDE) else np.argmin(crowded)
    best = axes[t]
    best[3] *= AXIS_STRIDE  # the full grid's cells per key unit
    return best, crowded[t]


@jit
def _fill_grid(e, axis, grid):
    """One row of :func:`lookup_grids`, with the very arithmetic ``find_bin`` uses, so that no rounding
    at a cell's border can put an edge and a value on different sides of it."""
    n, top = e.shape[0], grid.shape[0] - 1.0
    j = 0
    while j < n and e[j] == -np.inf:
        j += 1
    for g in range(grid.shape[0]):  # the finite edges follow the -inf ones; NaN and +inf come last
        while j < n and np.isfinite(e[j]) and grid_cell(e[j], axis, top) < g:
            j += 1
        # j: the edges of the cells below. The cell's own edges are <= all its values only if it has one, its
        # least float; the end cells are always marked.
        k = j
        while k < n and np.isfinite(e[k]) and grid_cell(e[k], axis, top) == g:
            k += 1
        at_start = k == j + 1 and grid_cell(np.nextafter(e[j], -np.inf), axis, top) < g
        if 0 < g < top and (k == j or at_start):
            grid[g] = k << 1
        else:
            grid[g] = (j << 1) | 1


@jit(forceinline=True)
def find_bin(e, axis, grid, x):
    """np.searchsorted(e, x, side="right"), read off the grid but in marked cells (see :func:`lookup_grids`)."""
    return bin_in_cell(e, grid[grid_cell(x, axis, grid.shape[0] - 1.0)], x)


@jit(inline="always")
def bin_in_cell(e, entry, x):
    """:func:`find_bin` of x from its cell's grid entry: the bin the entry gives, or in a marked cell, past the
    edges that follow and are <= x; NaN sorts last, as in numpy."""
    b = np.int64(entry >> 1)
    if entry & 1:
        n = e.shape[0]
        while b < n and e[b] <= x:
            b += 1
        if x != x:
            b = n
    return b


# Finding bins is bound by the latency of the random reads of the grid: the loop asks for the entry of the
# value GRID_AHEAD places on.
GRID_AHEAD = 64
# Adding a value asks ahead for the count (and sums) of the value COUNT_AHEAD places on (<= GRID_AHEAD, the
# padding): a variable's counts are out of cache when its turn comes in a chunk (one thread: ~180 -> ~165 ns a
# path for 28 variables).
COUNT_AHEAD = 32


@jit(parallel=True)
def _bin_rows(values, edges, axes, grid, rows, counts, sums, sums_sq, totals, tail_min, tail_max):
    """Add each row of ``values`` (one variable) to its histogram: counts, per-bin sums into row ``rows[v]`` of
    ``sums`` and ``sums_sq`` where that is >= 0, the totals, and to ``tail_min`` and ``tail_max`` the end bins'
    extreme values; variables in parallel, paths in order. The cells are found first (SIMD), then the bins
    (reading ahead), then the bins are added: loops with fewer misses in flight than one."""
    n_vars, n = values.shape
    for v in prange(n_vars):
        e, g_v, axis = edges[v], grid[v], axes[v]
        top = g_v.shape[0] - 1.0
        bins = np.empty(n + GRID_AHEAD, np.int32)  # each value's cell, then its bin; cell 0 past the end
        bins[n:] = 0
        for i in range(n):
            bins[i] = grid_cell(values[v, i], axis, top)
        for i in range(n):
            prefetch(g_v, bins[i + GRID_AHEAD])
            bins[i] = bin_in_cell(e, g_v[bins[i]], values[v, i])
        top_b, r = top_bin(e), rows[v]
        total, total_sq = totals[v, 0], totals[v, 1]
        c_v = counts[v]
        for i in range(n):
            prefetch(c_v, bins[i + COUNT_AHEAD])
            if r >= 0:
                prefetch(sums[r], bins[i + COUNT_AHEAD])
                prefetch(sums_sq[r], bins[i + COUNT_AHEAD])
            x = values[v, i]
            b = bins[i] + (x != x)  # NaN: from find_bin's last bin to the NaN bin
            counts[v, b] += 1
            total += x if x == x else 0.0  # NaN (an undefined gross margin) is counted, not summed: the summaries
            total_sq += x * x if x == x else 0.0  # take the mean of the defined values (summary.DefinedPart)
            if r >= 0:  # the same for every value: the compiler takes it out of the loop
                sums[r, b] += x
                sums_sq[r, b] += x * x
            if b == 0 and x < tail_min[v]:  # rare: a value below the pilot's
                tail_min[v] = x
            if b == top_b and x > tail_max[v]:
                tail_max[v] = x
        totals[v, 0], totals[v, 1] = total, total_sq


@jit
def top_bin(edges):
    """The bin of the finite values at or above the last finite edge (edges are sorted, with -inf first and
    NaN and +inf last); the bins above hold NaN only."""
    return np.searchsorted(edges, np.inf)


@jit(parallel=True)
def _fold_block(total, block):
    """total += block, then block = 0: one parallel pass (in numpy, two passes took ~2 ms a block)."""
    for v in prange(total.shape[0]):
        for b in range(total.shape[1]):
            total[v, b] += block[v, b]
            block[v, b] = 0.0
