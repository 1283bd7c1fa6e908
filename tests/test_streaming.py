"""Runs that do not keep every path: exact probabilities, quantiles within their stated rank error,
the same results for any chunking, and the kept sample equal to the full run's first rows."""

import numpy as np
import pandas as pd
import pytest

from simulator import stats
from simulator.api import run
from simulator.config import load_config
from simulator.engine import simulate
from simulator.errors import SettingsError
from simulator.keep import KeepPaths
from simulator.samples import BINS, PILOT_PATHS, SortedSample
from simulator.summary import QUANTILES, summary_frame

N = PILOT_PATHS + 20_000  # past the pilot, across several sum blocks


@pytest.fixture(scope="module")
def exact_and_streamed():
    cfg = load_config()
    return (simulate(cfg, N, seed=5, keep_paths="all"), simulate(cfg, N, seed=5, keep_paths="none"))


def test_probabilities_are_exact_without_rows(exact_and_streamed):
    exact, streamed = exact_and_streamed
    assert streamed.counts == exact.counts
    assert len(streamed.scalars) == 0 and not streamed.exact


def test_quantiles_lie_within_their_stated_rank_error(exact_and_streamed):
    exact, streamed = exact_and_streamed
    worst = 0.0
    for name, hist in streamed.samples.items():
        truth = exact.samples[name]
        assert isinstance(truth, SortedSample) and hist.n == truth.n == N
        for q in QUANTILES:
            for rank in stats.quantile_ranks(N, q):
                err = hist.rank_error(rank)
                worst = max(worst, err)
                slack = int(np.ceil(err * N))
                lo, hi = truth.value_at(max(0, rank - slack)), truth.value_at(min(N - 1, rank + slack))
                assert lo <= hist.value_at(rank) <= hi, (name, q)
    # Bins hold ~1/BINS of the paths: the rank error stays under the 1e-4 the summaries promise.
    assert worst <= 1e-4


def test_means_and_tail_figures_match_the_exact_ones(exact_and_streamed):
    exact, streamed = exact_and_streamed
    cfg = exact.config
    a = summary_frame(cfg, N, exact.counts, exact.samples).set_index("metric")
    b = summary_frame(cfg, N, streamed.counts, streamed.samples).set_index("metric")
    assert a.index.equals(b.index)
    p_rows = [m for m in a.index if m.startswith("p_")]
    pd.testing.assert_frame_equal(a.loc[p_rows], b.loc[p_rows])
    # Means agree to rounding; ES and CFaR within a tenth of their standard error.
    assert b.loc["funding_gap_mean", "value"] == pytest.approx(a.loc["funding_gap_mean", "value"], rel=1e-9)
    for m in ("funding_gap_es95", "cfar95_2030_vs_expected", "cfar95_cumulative_vs_expected"):
        assert abs(a.loc[m, "value"] - b.loc[m, "value"]) < 0.1 * a.loc[m, "stderr"], m


def test_every_mean_matches_the_exact_one(exact_and_streamed):
    """Every variable keeps its sum and sum of squares, whether its histogram keeps sums within bins or not."""
    exact, streamed = exact_and_streamed
    for name, hist in streamed.samples.items():
        a, b = stats.mean(exact.samples[name]), stats.mean(hist)
        assert b.value == pytest.approx(a.value, rel=1e-9, abs=1e-12), name
        assert b.stderr == pytest.approx(a.stderr, rel=1e-6), name


def test_a_histogram_without_bin_sums_refuses_tail_means(rng):
    from simulator.samples import Accumulator, bin_edges

    xs = rng.normal(0, 1, 50_000)
    acc = Accumulator(["with", "without"], *bin_edges(np.stack([xs, xs])), [True, False])
    acc.add(np.stack([xs, xs]), 0)
    with_sums, without = acc.finish().values()
    assert (without.total, without.total_sq) == (with_sums.total, with_sums.total_sq)
    assert with_sums.top_moments(100)[0] == pytest.approx(np.sort(xs)[-100:].mean(), rel=1e-3)
    with pytest.raises(ValueError, match="does not keep"):
        without.top_moments(100)
    with pytest.raises(ValueError, match="does not keep"):
        without.below(0.0)


def test_streamed_summaries_do_not_depend_on_chunks_or_threads():
    cfg = load_config()
    runs = [run(cfg, N, seed=8, keep_paths="sample:1000", chunk_size=c, threads=t)
            for c, t in [(1 << 16, 2), (9_999, 1), (N, 2)]]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0].summary, other.summary, check_exact=True)
        pd.testing.assert_frame_equal(runs[0].by_year, other.by_year, check_exact=True)
        pd.testing.assert_frame_equal(runs[0].paths, other.paths, check_exact=True)


def test_a_kept_sample_is_the_first_rows_of_the_full_run():
    cfg = load_config()
    full = run(cfg, 3000, seed=4, keep_paths="all").paths
    sample = run(cfg, 3000, seed=4, keep_paths="sample:500").paths
    pd.testing.assert_frame_equal(sample, full.iloc[:500])


@pytest.mark.parametrize("keep, n, expected", [
    (None, 10, 10), (None, 2_000_000, 100_000), ("all", 5, 5), ("none", 5, 0), ("sample:3", 5, 3),
    ("sample:30", 5, 5), (3, 5, 3), (KeepPaths(7), 5, 5)])
def test_keep_paths_rows(keep, n, expected):
    assert KeepPaths.parse(keep).rows(n) == expected


@pytest.mark.parametrize("kept, n, option", [(5, 5, "all"), (0, 5, "none"), (3, 5, "sample:3")])
def test_keep_paths_option_keeps_the_same_rows(kept, n, option):
    assert KeepPaths.option(kept, n) == option
    assert KeepPaths.parse(option).rows(n) == kept


@pytest.mark.parametrize("value", ["some", "sample:", "sample:-1", "sample:1.5", " all", -1, 2.0])
def test_bad_keep_value(value):
    with pytest.raises(SettingsError, match="all, none or sample:N"):
        KeepPaths.parse(value)
    with pytest.raises(ValueError, match="all, none or sample:N"):  # the Python API's callers catch ValueError
        KeepPaths.parse(value)


def test_find_bin_agrees_with_searchsorted(rng):
    from numba import njit

    from simulator.samples import bin_edges, block_histograms, find_bin, lookup_grids, pilot_edges

    @njit
    def bins(e, axis, grid, xs):
        out = np.empty(xs.size, np.int64)
        for i in range(xs.size):
            out[i] = find_bin(e, axis, grid, xs[i])
        return out

    n = 50_000
    columns = [rng.lognormal(0, 1, n), np.where(rng.random(n) < 0.8, 0.0, rng.exponential(5, n)),
               np.round(rng.normal(0, 1, n), 2), np.full(n, 3.0), rng.pareto(1.5, n),
               np.where(rng.random(n) < 0.01, rng.choice([-np.inf, np.inf], n), rng.normal(0, 1, n)),
               rng.lognormal(0, 3, n), 5.0 + 1e-3 * rng.standard_t(1.2, n), -rng.pareto(0.8, n),
               np.where(rng.random(n) < 2e-4, rng.choice([-1e300, 1e30], n), rng.lognormal(0, 1, n))]
    exact = pilot_edges(np.array(columns))
    # The pilot's own edges (most cells with an edge are marked) and bin_edges' (most are not).
    for edges, axes in [(exact, lookup_grids(exact)[0]), bin_edges(np.array(columns))]:
        grid = lookup_grids(edges, axes)[1]
        for v, col in enumerate(columns):
            finite = edges[v][np.isfinite(edges[v])]
            with np.errstate(over="ignore"):  # the float below -1.8e308 is -inf
                below = np.nextafter(finite, -np.inf)
            xs = np.concatenate([rng.choice(col, 20_000), finite, below, rng.normal(0, 10, 1000),
                                 [-1e300, 1e300, np.inf, -np.inf, np.nan, 0.0, -0.0]])
            expected = np.searchsorted(edges[v], xs, side="right")
            assert np.array_equal(bins(edges[v], axes[v], grid[v], xs), expected)
            # The histograms' loop (cells first, reads ahead), on a long row and one shorter than its look-ahead.
            for k in (xs.size, 5):
                counts = block_histograms(edges[v:v + 1], axes[v:v + 1], [False], xs[None, :k])[0][0]
                in_bins = np.where(np.isnan(xs), counts.size - 1, expected)[:k]  # NaN in a bin of its own, the last
                assert np.array_equal(counts, np.bincount(in_bins, minlength=counts.size))


def test_bin_edges_sit_on_cell_starts(rng):
    """bin_edges moves each of the pilot's edges to the least float of its grid cell or the next, unless it
    bounds a value that recurs, lies in an end cell (or the one before the top), or would pass an edge beside
    it; the edges stay in order."""
    from simulator.samples import bin_edges, grid_cell, lookup_grids, pilot_edges

    rows = np.concatenate([_tricky_rows(rng), [rng.lognormal(0, 3, 40_000), -rng.pareto(0.8, 40_000)]])
    exact = pilot_edges(rows)
    edges, axes = bin_edges(rows)
    top = lookup_grids(edges, axes)[1].shape[1] - 1.0
    moved = 0
    for v in range(len(rows)):
        e, x, axis = edges[v], exact[v], axes[v]
        finite = np.isfinite(x)
        assert np.array_equal(e[~finite], x[~finite], equal_nan=True)
        assert np.all(np.diff(e[finite]) > 0)
        atoms = np.isin(x, x[np.r_[False, x[1:] == np.nextafter(x[:-1], np.inf)]]) | np.isin(
            x, x[np.r_[x[1:] == np.nextafter(x[:-1], np.inf), False]])
        for a, b, recurs in zip(e[finite], x[finite], atoms[finite]):
            if a == b:
                continue
            g, cell = grid_cell(b, axis, top), grid_cell(a, axis, top)
            assert not recurs and 0 < g < top - 1 and cell in (g, g + 1)
            assert grid_cell(np.nextafter(a, -np.inf), axis, top) < cell  # the least float of its cell
            moved += 1
    assert moved > 0.9 * np.isfinite(exact).sum()


def test_cell_start_is_the_least_float_of_a_cell():
    """Whatever the axis (linear or log-like, a grid spanning a few units or 1e300) and however far the guess
    from inverting the key lands, the search finds the cell's least float."""
    from simulator.samples import GRID_CELLS, _cell_start, grid_cell

    top = GRID_CELLS - 1.0
    axes = [(0.0, np.inf, -3.0, GRID_CELLS / 6.0), (5.0, 2.0**-20, -3e18, GRID_CELLS / 6e18),
            (0.0, 1.0, 0.0, GRID_CELLS / 4.6e18), (-1e300, np.inf, 0.0, GRID_CELLS / 2e300)]
    for axis in map(np.array, axes):
        for g in (1, 2, 1000, 65_536, GRID_CELLS - 2, GRID_CELLS - 1):
            x = _cell_start(axis, top, g)
            assert grid_cell(x, axis, top) >= g > grid_cell(np.nextafter(x, -np.inf), axis, top), (axis, g)


def test_grid_follows_heavy_tails(rng):
    """The lookup grid's key adapts to each variable: on a grid uniform in the value, most values of these
    heavy-tailed columns, or of columns with a few far outliers, fall in cells of several edges (which
    find_bin must scan); here few do, and a plain normal column keeps the grid linear in the value. (Many
    values on one atom are not covered: the search sees the edges, not how many values sit on one.)"""
    from simulator.samples import bin_edges, grid_cell, lookup_grids, pilot_edges

    n = 100_000
    far_outliers = rng.lognormal(0, 1, n)
    far_outliers[:20] = 1e30 * rng.random(20)  # they used to leave the bulk in one cell
    inf_atom = rng.lognormal(0, 1, n)
    inf_atom[:20] = -np.inf  # an atom: its bin's upper edge is the finite -1.8e308
    columns = np.array([rng.lognormal(0, 3, n), 5.0 + 1e-3 * rng.standard_t(1.2, n), -rng.pareto(0.8, n),
                        10 * rng.standard_t(1.5, n), far_outliers, inf_atom, rng.normal(0, 1, n)])
    exact = pilot_edges(columns)
    assert np.array_equal(lookup_grids(exact, lookup_grids(exact)[0])[1], lookup_grids(exact)[1])  # given axes
    edges, axes = bin_edges(columns)
    grid = lookup_grids(edges, axes)[1]
    for v, col in enumerate(columns):
        x = rng.choice(col, 20_000)
        cells = np.array([grid_cell(xi, axes[v], grid.shape[1] - 1.0) for xi in x])
        marked = np.mean(grid[v, cells] & 1)
        assert marked < 0.1, (v, marked)  # ~4 cells a bin: a value in a cell of several edges is the exception
    assert axes[-1, 1] == np.inf  # the normal column: linear


def _tricky_rows(rng, n=40_000):
    """Rows with NaN, signed zeros, infinities, atoms, heavy tails of either sign."""
    specials = rng.choice([0.0, -0.0, np.nan, np.inf, -np.inf, 5.0], n)
    return np.array([rng.normal(size=n), np.where(rng.random(n) < 0.3, specials, rng.lognormal(size=n)),
                     np.round(rng.normal(size=n), 1), np.full(n, -2.5), -rng.pareto(1.2, n),
                     np.where(rng.random(n) < 0.5, -0.0, 0.0)])


def test_sorted_rows_agree_with_numpy_sort(rng):
    from simulator.samples import sorted_rows

    rows = _tricky_rows(rng)
    odd_nan = np.array(0x7FF8000000000001 | -(1 << 63), dtype=np.int64).view(np.float64)  # sign set, a payload
    rows[1, rng.random(rows.shape[1]) < 0.01] = odd_nan
    for got, row in zip(sorted_rows(rows), rows):
        assert np.array_equal(got, np.sort(row), equal_nan=True)
        zeros = np.signbit(got[got == 0.0])  # np.sort leaves their order open; here -0.0 comes first
        assert not np.any(zeros[1:] & ~zeros[:-1])
        assert np.all(got[np.isnan(got)].view(np.int64) == np.array(np.nan).view(np.int64))  # one NaN


def test_pilot_edges_follow_their_definition(rng):
    """Against the definition written with np.unique: every k-th distinct value, plus each value that
    holds 1/BINS of the pilot and the next float after it."""
    import math

    from simulator.samples import pilot_edges

    rows = _tricky_rows(rng)
    edges = pilot_edges(rows)
    for got, row in zip(edges, rows):
        distinct, counts = np.unique(row, return_counts=True)
        atoms = distinct[counts * BINS >= row.size]
        step = max(1, math.ceil(distinct.size / BINS))
        want = np.unique(np.concatenate([distinct[step::step], atoms, np.nextafter(atoms, np.inf)]))
        assert np.array_equal(got[:want.size], want, equal_nan=True)
        assert np.all(got[want.size:] == np.inf)


def test_histogram_end_bins_atoms_and_nan(rng):
    """Values beyond the pilot's range fall in the end bins, bounded by the extreme values seen; a value that
    recurs in the pilot is read back exactly (rank error 0); NaN ranks read NaN, as in a sorted sample."""
    from simulator.samples import Accumulator, bin_edges

    pilot = rng.permutation(np.concatenate([rng.normal(0, 1, 20_000), np.full(5_000, 2.0)]))
    later = np.concatenate([rng.normal(0, 1, 20_000), [-9.0, 9.0], np.full(5, np.nan)])
    acc = Accumulator(["x"], *bin_edges(pilot[None]), [True])
    acc.add(pilot[None], 0)
    for part in np.array_split(later, 7):  # several calls: the extremes are kept across them
        acc.add(part[None], acc.next_id)
    hist = acc.finish()["x"]
    truth = SortedSample(np.concatenate([pilot, later]))
    assert (hist.tail_min, hist.tail_max) == (-9.0, 9.0)
    n = truth.n
    for rank in range(n):
        value, err = hist.value_at(rank), hist.rank_error(rank)
        if rank >= n - 5:
            assert np.isnan(value) and err == 0.0
            continue
        slack = int(np.ceil(err * n))
        assert truth.value_at(max(0, rank - slack)) <= value <= truth.value_at(min(n - 6, rank + slack)), rank
        if truth.value_at(rank) == 2.0:
            assert value == 2.0 and err == 0.0


def test_a_pilot_of_atoms_only(rng):
    """A variable whose pilot is all atoms has two edges an atom, none of them moved, more than a 16-bit grid
    can count: the grid widens, and values still find their bins."""
    from simulator.samples import BINS, bin_edges, block_histograms, lookup_grids, pilot_edges

    pilot = rng.permutation(np.repeat(np.arange(BINS, dtype=float), 16))  # each value 1/BINS of the pilot
    edges, axes = bin_edges(pilot[None])
    assert edges.shape[1] >= 1 << 16 and np.array_equal(edges, pilot_edges(pilot[None]))
    assert lookup_grids(edges, axes)[1].dtype == np.uint32  # a count this large and the mark need 32 bits
    assert lookup_grids(*bin_edges(pilot[None, :50_000] + rng.random(50_000)))[1].dtype == np.uint16
    xs = np.concatenate([pilot[:50_000], rng.uniform(-10, BINS + 10, 5_000)])
    counts = block_histograms(edges, axes, [False], xs[None])[0][0]
    expected = np.searchsorted(edges[0], xs, side="right")
    assert np.array_equal(counts, np.bincount(expected, minlength=counts.size))
