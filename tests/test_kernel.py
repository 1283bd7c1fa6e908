"""The numba kernel against the plain-Python reference, and its random numbers."""

import copy
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from simulator import kernel, model, reference
from simulator.config import validate
from simulator.engine import simulate

from conftest import set_key


def kernel_paths(cfg, seed, first, n, columns=None):
    """The kernel's outputs for paths first .. first + n - 1; ``columns``: the drawn parameters theta keeps."""
    inputs = model.build_inputs(cfg)
    if columns is not None:
        inputs = inputs.keeping(columns)
    theta = np.empty((n, len(inputs.theta_params)))
    annual = np.empty((n, len(kernel.ANNUAL_VARS), inputs.n_years))
    scalars = np.empty((n, len(kernel.SCALAR_VARS)))
    kernel.simulate_block(np.uint64(seed), first, inputs, theta, annual, scalars)
    return inputs, theta, annual, scalars


SCENARIOS = {
    "base": [],
    "base_uncapped": [],
    # A high floor exercises contingent raises, the credit line, shortfalls and the runway cut.
    "stressed": [("funding", "min_cash", 70.0), ("training", "runway_floor", 3.0)],
    "eventful": [("competition", "intensity", 3.0), ("compute", "supply_shock_intensity", 2.0),
                 ("simulation", "steps_per_year", 12)],
    "annual": [("simulation", "steps_per_year", 1), ("funding", "min_cash", 50.0)],
    # Yearly steps, frequent shocks, fixed opex shrinking fast: ads' first-year growth (d ~ 2.5) meets
    # competition shocks, and opex's e^(g dt) is beyond ramp_lanes' range: the lanes the kernel gives to libm.
    "steep": [("simulation", "steps_per_year", 1), ("competition", "intensity", 3.0), ("costs", "opex_growth", -2.5)],
    # A volatile segment: a quarter of the ads lanes' bridge factors fall beyond exp_taylor's range (|w| >= 0.25),
    # the lanes the kernel finishes with exp_lanes.
    "volatile": [("revenue.ads", "sigma", 1.5)],
    # Ads launch exactly at a step's boundary (t = 1): the kernel sums the plan ratio afresh there.
    "boundary": [("revenue.ads", "launch", dt.date(2027, 1, 1))],
    # model v2: ceilings close to the start at yearly steps, so paths pass them (rho > 1) and growth turns.
    "tight_ceilings": [("simulation", "steps_per_year", 1), ("revenue.consumer", "ceiling", 16.0),
                       ("revenue.enterprise", "ceiling", 8.0), ("revenue.ads", "ceiling", 0.5)],
    # A ceiling on a segment launching mid-step (ads, 9 February) at monthly steps.
    "monthly_ceilings": [("simulation", "steps_per_year", 12), ("revenue.ads", "ceiling", 2.0)],
    # model v2: raises under the floor on distress terms, none below +20 (distress_limit -20), a large
    # credit line with dear interest, survival mode on and off.
    "distress": [("funding", "min_cash", 40.0), ("funding.contingent", "distress_limit", -20.0),
                 ("funding.contingent", "distress_factor", 0.3), ("funding.credit", "limit", 30.0),
                 ("funding.credit", "rate", 0.2), ("training", "runway_floor", 0.0)],
    # Compute contracts (model v2): none (all at spot); capacity far above demand (idle payments, resale on);
    # far below (spot beyond it); a scalar unit price; supply shocks that fade fast, with competition shocks.
    "no_contracts": [("compute", "contracts", {})],
    "contracts_above": [("compute", "contracts", {"huge": {"amount": {str(y): 400.0 for y in range(2026, 2032)},
                                                           "unit_price": 0.5, "take_or_pay": 0.7}}),
                        ("compute", "resale", 0.4)],
    "contracts_below": [("compute", "contracts", {"small": {"amount": {"2026": 2.0, "2028": 3.0, "2030": 1.0},
                                                            "take_or_pay": 1.0}})],
    "resale": [("compute", "resale", 0.6), ("funding", "min_cash", 40.0)],
    "fading": [("compute", "supply_shock_intensity", 3.0), ("compute", "supply_shock_half_life", 0.4),
               ("competition", "intensity", 2.0), ("simulation", "steps_per_year", 12)],
}


def configure(base_raw, name):
    """The validated config of scenario ``name``: its changes (a dotted section, a key, a value) on the base."""
    if name == "base_uncapped":  # v1's revenue: no segment has a ceiling
        for seg in base_raw["revenue"].values():
            seg.pop("ceiling", None)
        base_raw["judgments"] = {k: v for k, v in base_raw["judgments"].items() if "ceiling" not in v["key"]}
    for section, key, value in SCENARIOS[name]:
        table = base_raw
        for part in section.split("."):
            table = table[part]
        table[key] = value
    return validate(base_raw)


@pytest.mark.parametrize("name", SCENARIOS)
def test_kernel_matches_reference(base_raw, name):
    """Same numbers to rounding: 1e-10 relative, or a dollar (1e-9 $B) where terms cancel."""
    inputs, theta, annual, scalars = kernel_paths(configure(base_raw, name), seed=99, first=1000, n=40)
    for i in range(40):
        ref = reference.simulate_path(inputs, 99, 1000 + i)
        np.testing.assert_allclose(theta[i], ref["theta"], rtol=1e-13, atol=0)
        for v, var in enumerate(kernel.ANNUAL_VARS):
            np.testing.assert_allclose(annual[i, v], ref["annual"][var], rtol=1e-10, atol=1e-9, err_msg=var)
        for s, var in enumerate(kernel.SCALAR_VARS):
            np.testing.assert_allclose(scalars[i, s], ref["scalars"][var], rtol=1e-10, atol=1e-9, err_msg=var)


def widely_drawn(base_raw, n_corr):
    """The base config with every fixed positive parameter drawn (uniform within +/-10%: 34 drawn in all) and the
    first ``n_corr`` drawn parameters mutually correlated (rank correlation 0.3 between every two): a dense
    Cholesky factor whose row r has r terms left of the diagonal, every count of terms from 0 to n_corr - 1."""
    cfg = validate(base_raw)
    for key, dist in cfg.parameters().items():
        if dist.dist == "fixed" and dist.value > 0:
            set_key(base_raw, key, {"dist": "uniform", "low": 0.9 * dist.value, "high": 1.1 * dist.value})
    names = model.drawn_parameters(validate(base_raw))[:n_corr]
    matrix = [[1.0 if i == j else 0.3 for j in range(n_corr)] for i in range(n_corr)]
    base_raw["parameter_correlation"] = {"names": names, "matrix": matrix}
    return validate(base_raw)


def test_kernel_matches_reference_with_1_to_30_correlated_parameters(base_raw):
    """Issue 35: rows of 4, 8, 12 ... correlated terms (5, 9, 13 ... mutually correlated parameters) read an
    unwritten entry of correlate_lanes' column list as an index, and crashed. Every count from 1 to 30
    against the reference."""
    for n_corr in range(1, 31):
        cfg = widely_drawn(copy.deepcopy(base_raw), n_corr)
        assert len(model.drawn_parameters(cfg)) >= 30
        inputs, theta, annual, scalars = kernel_paths(cfg, seed=7, first=300, n=3)
        for i in range(3):
            ref = reference.simulate_path(inputs, 7, 300 + i)
            np.testing.assert_allclose(theta[i], ref["theta"], rtol=1e-13, atol=0, err_msg=str(n_corr))
            for v, var in enumerate(kernel.ANNUAL_VARS):
                np.testing.assert_allclose(annual[i, v], ref["annual"][var], rtol=1e-10, atol=1e-9,
                                           err_msg=f"{var}, {n_corr} correlated")
            for s, var in enumerate(kernel.SCALAR_VARS):
                np.testing.assert_allclose(scalars[i, s], ref["scalars"][var], rtol=1e-10, atol=1e-9,
                                           err_msg=f"{var}, {n_corr} correlated")


def test_stressed_scenario_exercises_every_branch(base_raw):
    """Guard for the test above: the stressed paths do raise, borrow and fall short."""
    _, _, _, scalars = kernel_paths(configure(base_raw, "stressed"), seed=99, first=1000, n=40)
    assert (scalars[:, kernel.S_N_RAISES] > 0).any()
    assert (scalars[:, kernel.S_CREDIT_MAX] > 0).any()
    assert (scalars[:, kernel.S_FIRST_SHORTFALL] >= 0).any()
    assert (scalars[:, kernel.S_FIRST_SHORTFALL] < 0).any()


def test_a_path_depends_only_on_seed_and_id(base_raw):
    cfg = validate(base_raw)
    _, theta_all, annual_all, _ = kernel_paths(cfg, seed=5, first=0, n=50)
    _, theta_one, annual_one, _ = kernel_paths(cfg, seed=5, first=37, n=1)
    assert np.array_equal(theta_all[37], theta_one[0]) and np.array_equal(annual_all[37], annual_one[0])
    _, theta_other, _, _ = kernel_paths(cfg, seed=6, first=37, n=1)
    assert not np.array_equal(theta_other[0], theta_one[0])


def test_a_narrowed_theta_holds_its_columns_and_changes_nothing_else(base_raw):
    """What a chunk of unkept rows asks for (ModelInputs.keeping): only the chosen drawn parameters, in the
    order asked, and the same paths."""
    cfg = validate(base_raw)
    _, theta, annual, scalars = kernel_paths(cfg, seed=3, first=100, n=700)
    for columns in ([5, 0, 17], []):
        _, narrow, annual_n, scalars_n = kernel_paths(cfg, seed=3, first=100, n=700, columns=columns)
        assert narrow.shape == (700, len(columns)) and np.array_equal(narrow, theta[:, columns])
        assert np.array_equal(annual_n, annual) and np.array_equal(scalars_n, scalars)
    inputs = model.build_inputs(cfg)
    with pytest.raises(ValueError, match="one column per entry of theta_params"):
        kernel.simulate_block(np.uint64(3), 0, inputs, np.empty((10, 2)), annual[:10], scalars[:10])


def test_reference_stream_matches_numba_generator():
    from numba import njit

    @njit
    def draws(seed, pid, n):
        out = np.empty(n)
        state = kernel.path_key(seed, pid)
        for i in range(n):
            state, out[i] = kernel.next_uniform(state)
        return out

    stream = reference.Stream(3, 17)
    assert draws(np.uint64(3), 17, 100).tolist() == [stream.uniform() for _ in range(100)]


def test_normals_pass_a_ks_test_and_have_unit_moments():
    """200k draws from one path-stream: KS distance under the 1% critical value 1.63/sqrt(n)."""
    from numba import njit

    @njit
    def normals(n):
        out = np.empty(n)
        state = kernel.path_key(np.uint64(1), 0)
        for i in range(n):
            state, out[i] = kernel.next_normal(state)
        return out

    n = 200_000
    z = normals(n)
    assert sps.kstest(z, "norm").statistic < 1.63 / math.sqrt(n)
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)


def test_paths_streams_start_at_random_points_and_do_not_overlap():
    """Every path's numbers are a stretch of one SplitMix64 sequence (state += GOLDEN), from a hashed start:
    two paths share numbers only where their starts lie within a path's draws (~300) of each other. On 10^6
    paths of the default seed: no two starts within 10^4 draws (a chance of 5e-4 for random starts), and the
    count of neighbours within w draws is Poisson with mean N^2 w / 2^64 (1,000 here), within 4 sigma."""
    from numba import njit

    inverse = np.uint64(pow(int(kernel.GOLDEN), -1, 1 << 64))  # start / GOLDEN: the start's place in the sequence

    @njit
    def places(seed, n):
        out = np.empty(n, np.uint64)
        for p in range(n):
            out[p] = kernel.path_key(seed, p) * inverse
        return out

    n = 1_000_000
    gaps = np.diff(np.sort(places(np.uint64(20260101), n)))
    assert gaps.min() > 10_000
    w, mean = 1000 * 2**64 // n**2, 1000
    assert abs(np.count_nonzero(gaps < np.uint64(w)) - mean) < 4 * math.sqrt(mean)


def test_streams_of_neighbouring_paths_are_uncorrelated(base_raw):
    """First parameter draw of 20k consecutive paths: lag-1 correlation within 4 standard errors."""
    sim = simulate(validate(base_raw), 20_000, seed=1)
    x = sim.theta[:, 0]
    r = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert abs(r) < 4 / math.sqrt(len(x))


def test_drawn_parameters_follow_their_distributions(base_raw):
    """Every drawn parameter of 20k paths against its distribution's cdf (closed form or table alike):
    Kolmogorov-Smirnov statistic under its 0.1% critical value, 1.95 / sqrt(n)."""
    cfg = validate(base_raw)
    sim = simulate(cfg, 20_000, seed=3)
    params = cfg.parameters()
    for column, key in enumerate(model.drawn_parameters(cfg)):
        statistic = sps.kstest(sim.theta[:, column], np.vectorize(params[key].cdf)).statistic
        assert statistic < 1.95 / math.sqrt(sim.theta.shape[0]), key


@pytest.mark.parametrize("name", ["base", "eventful"])
def test_antithetic_kernel_matches_reference(base_raw, name):
    base_raw["simulation"]["antithetic"] = True
    cfg = configure(base_raw, name)
    inputs, theta, annual, scalars = kernel_paths(cfg, seed=99, first=1000, n=12)
    for i in range(12):
        ref = reference.simulate_path(inputs, 99, 1000 + i)
        for v, var in enumerate(kernel.ANNUAL_VARS):
            np.testing.assert_allclose(annual[i, v], ref["annual"][var], rtol=1e-10, atol=1e-9, err_msg=var)
        np.testing.assert_allclose(theta[i], ref["theta"], rtol=1e-13)


def test_antithetic_partner_mirrors_the_normal_scores(base_raw):
    """Parameters with a normal distribution sit symmetrically around their mean in each pair."""
    base_raw["simulation"]["antithetic"] = True
    cfg = validate(base_raw)
    _, theta, _, _ = kernel_paths(cfg, seed=3, first=0, n=10)
    col = model.drawn_parameters(cfg).index("training.revenue_elasticity")  # normal, mean 1.0
    np.testing.assert_allclose(theta[0::2, col] + theta[1::2, col], 2.0, rtol=1e-12)
    plain = kernel_paths(validate({**base_raw, "simulation": {**base_raw["simulation"], "antithetic": False}}),
                         seed=3, first=0, n=10)[1]
    assert np.array_equal(plain[0::2], theta[0::2])  # even paths are the plain ones


@pytest.mark.parametrize("name", ["shocked_ramp", "shocked_ramp_lanes"])
def test_shocked_ramp_matches_the_integrals_it_stands_for(name):
    """shocked_ramp (two expm1 and one exp) and shocked_ramp_lanes (two ramp_lanes and one exp_lanes, for
    |d| < RAMP_RANGE) against the reference's integrals of exp(d s), at the edges: a shock at the start or
    the end of the step, no growth, steep growth (shocked_ramp only), no jump."""
    from numba import njit

    function = getattr(kernel, name)
    shocked = njit(lambda d, when, jump: function(d, when, jump))
    rng = np.random.default_rng(4)
    steep = (2.5, -6.0) if name == "shocked_ramp" else (1.999, -1.999)
    cases = [(d, when, jump) for d in (0.0, 1e-14, -3e-13, 0.05, -0.4, *steep)
             for when in (0.0, 1e-9, 0.3, 0.999, 1.0) for jump in (0.0, -0.2, -1.5)]
    cases += list(zip(rng.normal(0, 0.3, 200), rng.random(200), np.log1p(-rng.random(200))))
    for d, when, jump in cases:
        ramp, growth = shocked(d, when, jump)
        want = reference.integral_exp(d, 0.0, when) + math.exp(jump) * reference.integral_exp(d, when, 1.0)
        assert ramp == pytest.approx(want, rel=1e-12, abs=1e-300), (d, when, jump)
        assert growth == pytest.approx(math.exp(d + jump), rel=1e-14), (d, when, jump)


def test_quantile_grid_step_is_a_power_of_two(base_raw):
    """interp_lanes multiplies by 1 / z_step instead of dividing: the same bits only for a power of two."""
    step = model.build_inputs(validate(base_raw)).z_step
    assert math.frexp(step)[0] == 0.5


def test_interp_lanes_equals_the_reference_quantile(base_raw):
    """interp_lanes (three loops, the lookups lane by lane) against reference.quantile, bit for bit: scores
    within the grid, on its points, at and beyond its ends, for partial tiles."""
    from numba import njit

    @njit
    def interp(row, z, z_min, z_step, m):
        index, at, out = np.zeros(kernel.LANES, np.int64), np.zeros(kernel.LANES), np.full(kernel.LANES, -7.0)
        kernel.interp_lanes(row, z, z_min, z_step, index, at, out, m)
        return out

    inputs = model.build_inputs(validate(base_raw))
    z_min, z_step = inputs.z_min, inputs.z_step
    z_max = z_min + z_step * (inputs.tables.shape[1] - 1)
    rng = np.random.default_rng(5)
    special = [z_min, z_max, z_min - 1e-9, z_max + 1e-9, -50.0, 50.0, z_min + z_step, z_max - z_step, 0.0, -0.0,
               np.nextafter(z_max, 0.0), np.nextafter(z_min, 0.0)]
    for k in np.flatnonzero(inputs.drawn_slot >= 0)[:6]:
        row = inputs.tables[k]
        for m in (1, 7, 64, 100, kernel.LANES):
            z = rng.normal(0.0, 2.0, kernel.LANES)
            z[:len(special)] = special
            rng.shuffle(z)
            got = interp(row, z, z_min, z_step, m)
            want = [reference.quantile(row, x, z_min, z_step) for x in z[:m]]
            assert got[:m].tolist() == want
            assert (got[m:] == -7.0).all()


def test_correlate_lanes_equals_the_matrix_product():
    """correlate_lanes, in place and up to four terms a pass, against numpy's product for sparse lower-triangular
    matrices with rows of 0 to 11 terms (rows of a weight 1 alone, or another weight alone, among them), offset
    rows and lanes: only rows z0 .. z0 + n - 1 and the scratch rows change, and the zero row stays zero. Dense
    matrices too, whose rows have every count of terms: the scratch list of columns starts as garbage (an index
    far out of bounds), so that a read of an entry the row did not write crashes (issue 35) rather than
    passing on a stale entry of an earlier row."""
    from numba import njit

    @njit
    def correlate(chol, first, z, z0, n):
        kernel.correlate_lanes(chol, first, z, z0, np.full(max(n, 1), 1 << 40, np.int64), n, z.shape[1])

    rng = np.random.default_rng(3)
    for n, density in ((1, 0.7), (2, 0.7), (5, 0.7), (6, 0.7), (9, 0.7), (12, 0.7), (5, 1.0), (9, 1.0), (13, 1.0)):
        chol = np.tril(rng.normal(size=(n, n))) * (rng.random((n, n)) < density)
        np.fill_diagonal(chol, np.where(rng.random(n) < 0.3, 1.0, rng.uniform(0.2, 1.5, n)))
        chol[n // 2, :n // 2] = 0.0  # a row that is its own normal, times its weight
        first = np.array([np.flatnonzero(row)[0] for row in chol])
        for z0 in (0, 2):
            z = rng.normal(size=(z0 + n + 1 + 3, 40))
            z[-3] = 0.0
            before = z.copy()
            correlate(chol, first, z, z0, n)
            np.testing.assert_allclose(z[z0:z0 + n], chol @ before[z0:z0 + n], rtol=1e-13, atol=1e-15)
            assert np.array_equal(z[:z0], before[:z0]) and np.array_equal(z[z0 + n:-3], before[z0 + n:-3])
            assert not z[-3].any()


def test_list_lanes_finds_the_flagged_lanes_in_order():
    """list_lanes (bit masks of 64 lanes) against flatnonzero, for partial tiles and for lanes beyond m
    holding stale flags, which it must not list."""
    from numba import njit

    @njit
    def listed(flags, m):
        out = np.full(kernel.LANES, -1, np.int64)
        return out[:kernel.list_lanes(flags, m, out)]

    rng = np.random.default_rng(2)
    for p in (0.0, 0.015, 0.5, 1.0):
        for m in (1, 2, 63, 64, 65, 100, 127, 128):
            flags = (rng.random(kernel.LANES) < p).astype(float)
            assert listed(flags, m).tolist() == np.flatnonzero(flags[:m]).tolist()
            assert listed(flags.astype(np.uint64), m).tolist() == np.flatnonzero(flags[:m]).tolist()


def test_normals_lanes_advance_each_stream_as_next_normal():
    """The SIMD ziggurat with its listed rejections, lane by lane, against the scalar generator: 300 rows of
    a partial tile (~1.5% of first candidates are rejected, so every lane takes the slow path)."""
    from numba import njit

    @njit
    def both(m, rows):
        states = np.empty(kernel.LANES, np.uint64)
        for i in range(m):
            states[i] = kernel.path_key(np.uint64(9), i)
        lanes = np.empty((rows, kernel.LANES))
        bits, listed, signs = np.empty(kernel.LANES, np.uint64), np.empty(kernel.LANES, np.int64), np.ones(m)
        for r in range(rows):
            kernel.normals_lanes(states, bits, listed, signs, lanes, r, m)
        scalar = np.empty((rows, m))
        for i in range(m):
            state = kernel.path_key(np.uint64(9), i)
            for r in range(rows):
                state, scalar[r, i] = kernel.next_normal(state)
        return lanes[:, :m], scalar

    lanes, scalar = both(101, 300)
    assert np.array_equal(lanes, scalar)


def test_every_jitted_function_is_cached_on_disk_but_the_inlined_helpers():
    """A function compiled without ``cache=True`` recompiles in every process: the warm start (< 3 s)
    would silently become a cold one. The inlined helpers are the exception: only jitted code calls them, and its
    cached code holds them. The kernel compiles one entry point; numba inlines exactly the kernel's phases and the
    other modules' helpers with a loop (the phases LLVM-inlined, their loops ran 3x slower), LLVM the helpers of
    draws, rng, lanes and fastmath, loops or not (numba-inlined, the cold compile took 3x longer): see
    ``simulator.jit``."""
    import ast

    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    from simulator import checks, draws, fastmath, lanes, rng, samples, summary

    modules = (kernel, checks, draws, fastmath, lanes, rng, samples, summary)
    jitted = {f"{module.__name__}.{name}": f for module in modules
              for name, f in vars(module).items() if isinstance(f, CPUDispatcher) and f.__module__ == module.__name__}
    assert len(jitted) > 50
    by_numba = {name for name, f in jitted.items() if f.targetoptions.get("inline") == "always"}
    by_llvm = {name for name, f in jitted.items() if f.targetoptions.get("forceinline")}
    uncached = {name for name, f in jitted.items() if isinstance(f._cache, NullCache)}
    assert uncached == by_numba | by_llvm and len(by_llvm) > 20
    assert [name for name in jitted if name.startswith("simulator.kernel.") and name not in uncached] == \
        ["simulator.kernel.simulate_tiles"]
    with_loops = {f"{module.__name__}.{node.name}" for module in modules
                  for node in ast.parse(Path(module.__file__).read_text()).body if isinstance(node, ast.FunctionDef)
                  and any(isinstance(x, (ast.For, ast.While)) for x in ast.walk(node))}
    lane_helpers = {name for name in jitted if name.split(".")[1] in ("draws", "rng", "lanes", "fastmath")}
    assert lane_helpers & uncached <= by_llvm and len(lane_helpers & with_loops & by_llvm) >= 8
    assert by_numba == (with_loops & (by_numba | by_llvm)) - lane_helpers


def test_branch_free_elementary_functions_match_libm():
    """exp_lanes, ramp_lanes, log_lanes and log1p_lanes (written so lane loops vectorise) against libm:
    relative errors as their docstrings state, and libm's answers at zero, infinities, NaN and subnormals."""
    from numba import njit

    @njit
    def apply(xs):
        out = np.empty((4, xs.size))
        for i in range(xs.size):
            out[0, i] = kernel.exp_lanes(xs[i])
            out[1, i] = kernel.ramp_lanes(xs[i]) if abs(xs[i]) < kernel.RAMP_RANGE else np.nan
            out[2, i] = kernel.log_lanes(xs[i])
            out[3, i] = kernel.log1p_lanes(xs[i]) if xs[i] > -1.0 else np.nan
        return out

    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.uniform(-700, 700, 20_000), rng.normal(0, 1, 20_000), rng.uniform(-1e-6, 1e-6, 1000),
                         np.exp(rng.uniform(-740, 709, 20_000)), 1 + rng.uniform(-1e-8, 1e-8, 1000),
                         -np.exp(rng.uniform(-740, 0, 5_000)), rng.uniform(-1, 0, 5_000)])
    got = apply(xs)
    with np.errstate(all="ignore"):
        want = np.exp(xs), np.where(xs == 0, 1.0, np.expm1(xs) / xs), np.log(xs), np.log1p(xs)
    in_range = (np.ones(xs.size, bool), np.abs(xs) < kernel.RAMP_RANGE, np.ones(xs.size, bool), xs > -1.0)
    ramp_tolerance = np.where(np.abs(xs) < 1.0, 1e-15, 6e-14)  # its series is cut short for |d| near 2
    for g, w, tolerance, where in zip(got, want, (2e-14, ramp_tolerance, 1e-15, 1e-15), in_range):
        ok = where & np.isfinite(w) & (w != 0) & (np.abs(w) > 1e-300)
        assert np.all(np.abs(g[ok] / w[ok] - 1) < np.broadcast_to(tolerance, xs.shape)[ok])
    specials = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 5e-324, 1e-310, 1.0])
    log = apply(specials)[2]
    with np.errstate(all="ignore"):
        expected = np.log(specials)
    np.testing.assert_allclose(log, expected, rtol=1e-15)
