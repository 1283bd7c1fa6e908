"""Analytic checks of the model: hand calculations, lognormal moments, accounting identities,
and agreement across steps per year."""

import copy
import datetime as dt
import math
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from pydantic import BaseModel
from scipy import integrate

from simulator import kernel, reference
from simulator.api import run
from simulator.built_model import Model
from simulator.cli import main
from simulator.config import Compute, Config, ConfigError, Funding, Judgment, ScheduledRaise, Segment, validate
from simulator.engine import InvariantError, simulate, trace_steps
from simulator.model import build_inputs, parameter_order
from simulator.samples import SortedSample
from simulator.summary import QUANTILES, by_step_frame, by_year_frame, qname, summary_frame, yearly

from conftest import quiet_world

copy_raw = copy.deepcopy


def one_segment_world(raw, *, g0, ginf, half_life=2.0):
    quiet_world(raw)
    raw["revenue"] = {"core": {"run_rate": 10.0, "growth_initial": g0, "growth_long_run": ginf,
                               "half_life": half_life, "sigma": 0.0, "competition_exposure": 0.0}}
    raw["shocks"] = {}
    raw["compute"].update(gross_margin_0=0.4, price_drift=0.0, usage_drift=0.0)
    raw["costs"].update(opex_base=3.0, opex_growth=0.2, opex_revenue_ratio=0.2, cash_interest=0.0)
    raw["compute"]["contracts"] = {}  # everything at spot, P = 1: training costs its plan
    raw["training"].update(revenue_elasticity=0.0, cut_factor=1.0)  # training never cut
    raw["funding"]["initial_cash"] = 40.0
    return raw


@pytest.mark.parametrize("spy", [1, 4, 12])
def test_deterministic_path_equals_hand_calculation(base_raw, spy):
    raw = one_segment_world(base_raw, g0=0.5, ginf=0.5)
    raw["simulation"]["steps_per_year"] = spy
    cfg = validate(raw)
    sim = simulate(cfg, 3, seed=1)
    per_year = yearly(sim.annual)
    cash = 40.0
    for i, y in enumerate(cfg.years):
        # Run-rate 10 e^{0.5 t}: revenue of year i is its integral over [i, i+1].
        revenue = 10 * math.exp(0.5 * i) * (math.exp(0.5) - 1) / 0.5
        opex = 3 * math.exp(0.2 * i) * (math.exp(0.2) - 1) / 0.2 + 0.2 * revenue
        share = cfg.costs.partner_share[str(y)]
        training = cfg.training.plan[str(y)]
        fcf = revenue * (1 - share) - 0.6 * revenue - opex - training
        cash += fcf
        for var, expected in [("revenue", revenue), ("gross_margin", 0.4), ("fcf", fcf), ("cash", cash),
                              ("compute_spend", 0.6 * revenue + training)]:
            np.testing.assert_allclose(per_year[var][:, i], expected, rtol=1e-10, err_msg=f"{var} {y}")


def test_growth_decays_toward_its_long_run_level(base_raw):
    """g(t) = ginf + (g0 - ginf) e^{-kt}: the revenue of each year equals the integral of the run-rate."""
    raw = one_segment_world(base_raw, g0=0.9, ginf=0.1, half_life=1.5)
    raw["simulation"]["steps_per_year"] = 12
    cfg = validate(raw)
    kappa = math.log(2) / 1.5

    def run_rate(t):
        return 10 * math.exp(0.1 * t + 0.8 * (1 - math.exp(-kappa * t)) / kappa)

    revenue = yearly(simulate(cfg, 1, seed=1).annual)["revenue"][0]
    for i in range(len(cfg.years)):
        expected = integrate.quad(run_rate, i, i + 1, epsabs=0, epsrel=1e-12)[0]
        # Within a month the run-rate is taken as log-linear: relative error ~ (k dt)^2 / 12.
        assert revenue[i] == pytest.approx(expected, rel=2e-4)


def test_compute_price_index_mean_matches_the_lognormal_formula(base_raw):
    """E[P(t)] = exp(mu t) (1 + S)^... with Poisson supply shocks: exp(mu t + lambda t S)."""
    raw = quiet_world(base_raw)
    mu, sigma, lam, size = -0.3, 0.25, 0.5, 0.3
    raw["compute"].update(price_drift=mu, price_sigma=sigma, supply_shock_intensity=lam, supply_shock_size=size)
    raw["compute"]["supply_shock_half_life"] = 1e9  # shocks that never fade: v1's price index
    raw["simulation"]["steps_per_year"] = 4
    inputs = build_inputs(validate(raw))
    n = 4000
    prices = np.array([[s["price"] for s in reference.simulate_path(inputs, 7, i)["trace"]] for i in range(n)])
    t = np.arange(1, prices.shape[1] + 1) / 4
    expected = np.exp(mu * t + lam * t * size)
    # Var P(t) = E[P^2] - E[P]^2 with E[P^2] = exp(2 mu t + s^2 t + lambda t ((1+S)^2 - 1)).
    sd = np.sqrt(np.exp(2 * mu * t + sigma**2 * t + lam * t * ((1 + size) ** 2 - 1)) - expected**2)
    np.testing.assert_array_less(np.abs(prices.mean(axis=0) - expected), 4 * sd / math.sqrt(n))
    # And the log has the stated drift: E[ln P(t)] = (mu - s^2/2) t + lambda t ln(1+S).
    log_mean = (mu - sigma**2 / 2) * t + lam * t * math.log(1 + size)
    log_sd = np.sqrt(sigma**2 * t + lam * t * math.log(1 + size) ** 2)
    np.testing.assert_array_less(np.abs(np.log(prices).mean(axis=0) - log_mean), 4 * log_sd / math.sqrt(n))


def test_cash_identity_holds_on_every_path(base_raw):
    """cash_end = initial cash + sum of FCF + funding raised + credit outstanding at the end."""
    base_raw["funding"]["min_cash"] = 60.0  # forces raises, credit draws and shortfalls
    paths = run(validate(base_raw), 20_000, seed=3).paths
    years = validate(base_raw).years
    fcf = sum(paths[f"fcf_{y}"] for y in years)
    expected = paths["funding.initial_cash"] + fcf + paths["raised_total"] + paths["credit_outstanding_end"]
    np.testing.assert_allclose(paths["cash_end"], expected, rtol=1e-10, atol=1e-9)
    assert (paths["raised_contingent"] > 0).any() and (paths["credit_outstanding_end"] > 0).any()
    assert paths[f"cash_{years[-1]}"].equals(paths["cash_end"])


@pytest.mark.slow
def test_steps_per_year_agree_on_annual_revenue(base_raw):
    """1, 4 and 12 steps a year: the same distribution of annual revenue within Monte Carlo error.

    For the mean of log revenue and the 5/50/95% quantiles of each year, the difference between
    two step sizes must stay under 4 combined standard errors (paths are independent between
    runs because the streams are consumed differently). Without the ceilings (v1's revenue) this holds for
    every pair. With base's ceilings, 1 step a year is allowed a discretisation error of 0.02 in log revenue
    on top: the logistic drag is taken from the step's starting run-rate, so a year's shocks do not feed back
    into it within the year (measured: the 5% quantile of 2029 ~0.016 lower, the 95% ~0.01 higher, than at
    4 or 12 steps; the mean and median agree).
    """
    for seg in base_raw["revenue"].values():
        seg.pop("ceiling", None)
    base_raw["judgments"] = {}
    check_steps_agree(base_raw, allowance_annual=0.0)


@pytest.mark.slow
def test_steps_per_year_agree_on_capped_annual_revenue(base_raw):
    """As above with base's ceilings; see there for the allowance at 1 step a year."""
    check_steps_agree(base_raw, allowance_annual=0.02)


def check_steps_agree(base_raw, allowance_annual):
    n = 60_000
    samples = {}
    for spy in (1, 4, 12):
        base_raw["simulation"]["steps_per_year"] = spy
        samples[spy] = yearly(simulate(validate(base_raw), n, seed=100 + spy).annual)["revenue"]
    for i in range(samples[1].shape[1]):
        for a, b in [(1, 4), (4, 12), (1, 12)]:
            la, lb = np.log(samples[a][:, i]), np.log(samples[b][:, i])
            se = math.sqrt(la.var() / n + lb.var() / n)
            allowance = allowance_annual if a == 1 else 0.0
            assert abs(la.mean() - lb.mean()) < 4 * se + allowance, (i, a, b)
            for q in (0.05, 0.5, 0.95):
                # Quantile SE ~ sqrt(q(1-q)/n) / density, the density estimated from the pooled sample.
                qa, qb = np.quantile(la, q), np.quantile(lb, q)
                lo, hi = np.quantile(la, [q - 0.01, q + 0.01])
                se_q = math.sqrt(q * (1 - q) / n) * (hi - lo) / 0.02
                assert abs(qa - qb) < 4 * math.sqrt(2) * se_q + allowance, (i, a, b, q)


def test_dated_price_shock_raises_costs_from_its_date(base_raw):
    """A 50% price jump on 2027-04-01: step averages 1 before, 1.5 after, the mix in its step."""
    raw = quiet_world(base_raw)
    raw["compute"]["price_drift"] = 0.0
    raw["compute"]["usage_drift"] = 0.0
    raw["compute"]["price_shocks"] = {"shortage": {"date": "2027-04-01", "size": 0.5}}
    raw["compute"]["contracts"] = {}  # all compute at spot
    raw["simulation"]["steps_per_year"] = 1
    cfg = validate(raw)
    level = build_inputs(cfg).price_level
    in_2027 = 90 / 365  # share of 2027 before 1 April
    np.testing.assert_allclose(level, [1.0, in_2027 + (1 - in_2027) * 1.5, 1.5, 1.5, 1.5])
    per_year = yearly(simulate(cfg, 2, seed=1).annual)
    cost_ratio = 1 - per_year["gross_margin"][0]
    np.testing.assert_allclose(cost_ratio / cost_ratio[0], level, rtol=1e-12)


def test_configs_differing_in_funding_share_the_paths_random_numbers(base_raw):
    """Common random numbers: a config that changes only the funding rules leaves revenue path by path."""
    a = simulate(validate(base_raw), 3000, seed=2)
    base_raw["funding"]["min_cash"] = 40.0  # many more raise attempts
    b = simulate(validate(base_raw), 3000, seed=2)
    assert np.array_equal(a.annual[:, 0], b.annual[:, 0])  # revenue, every path and year
    assert not np.array_equal(a.scalars, b.scalars)


def without_optional_keys(raw: dict, model) -> dict:
    """``raw`` (a resolved config's table for the schema ``model``) without every key whose field has a default.
    Tables of named entries (segments, raises, judgments) are kept and stripped entry by entry; a raise keeps its
    date or window, a judgment its alternatives (one of each group is required)."""
    out = {}
    for key, value in raw.items():
        field = model.model_fields[key]
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        entries = isinstance(value, dict) and args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel)
        if entries:  # named entries: each stripped
            out[key] = {name: without_optional_keys(entry, args[-1]) for name, entry in value.items()}
        elif not field.is_required() and not (model is ScheduledRaise and key in ("date", "window")) \
                and not (model is Judgment and key in ("low", "high", "scale", "pair")):
            continue
        elif isinstance(value, dict) and isinstance(ann, type) and issubclass(ann, BaseModel):
            out[key] = without_optional_keys(value, ann)
        else:
            out[key] = value
    return out


def test_a_config_without_its_optional_keys_runs_with_the_documented_defaults(base_raw):
    """Issue 35: competition_exposure, compute.resale and funding.min_cash left out passed validate and
    then broke the run (KeyError: a default that was no parameter). Every key whose schema field has a default
    is left out of the resolved base config; the run must see each default as the kernel's parameter."""
    stripped = without_optional_keys(validate(base_raw).resolved(), Config)
    assert "min_cash" not in stripped["funding"] and "resale" not in stripped["compute"]
    assert "supply_shock_half_life" not in stripped["compute"]
    assert all("competition_exposure" not in seg for seg in stripped["revenue"].values())
    assert "simulation" not in stripped and "probability" not in stripped["funding"]["scheduled"]["softbank"]
    cfg = validate(stripped)
    results = run(cfg, 200, seed=4)
    assert np.isfinite(results.summary["value"]).all()
    paths = results.paths
    inputs = build_inputs(cfg)
    order = parameter_order(cfg)
    fields = {"funding.min_cash": Funding, "compute.resale": Compute, "compute.supply_shock_half_life": Compute}
    fields.update({f"revenue.{s}.competition_exposure": Segment for s in cfg.revenue})
    for key, model in fields.items():
        default = model.model_fields[key.rsplit(".", 1)[1]].default
        assert inputs.tables[order.index(key)][0] == default, key
    assert (paths["funding_gap"] == np.maximum(0.0, 10.0 - paths["lowest_cash"])).all()


def only_segment_launching_in_2027(raw: dict) -> dict:
    """Ads alone, launched in March 2027: no revenue in 2026, so no gross margin that year (issue 35)."""
    raw["revenue"] = {"ads": {**raw["revenue"]["ads"], "launch": dt.date(2027, 3, 1)}}
    raw["shocks"] = {}
    raw["parameter_correlation"] = {}
    return raw


def test_gross_margin_of_a_year_without_revenue_is_left_out_and_counted(base_raw, tmp_path):
    """Issue 35: a year without revenue put NaN into summary.parquet, by_year and by_step (exit 0). Its gross
    margin is undefined: the statistics are over the paths with revenue, the others are counted, and only a
    statistic with no (or, for a standard error, one) defined value is NaN."""
    raw = only_segment_launching_in_2027(base_raw)
    raw["competition"].update(intensity=100.0, severity=0.999999)  # revenue down to 0 in 2028 on some paths, then all
    config = tmp_path / "late.toml"
    config.write_text(validate(raw).to_toml())
    result = CliRunner().invoke(main, ["run", str(config), "-n", "400", "-q", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    summary = pd.read_parquet(tmp_path / "out" / "summary.parquet").set_index("metric")
    by_year = pd.read_parquet(tmp_path / "out" / "by_year.parquet")
    by_step = pd.read_parquet(tmp_path / "out" / "by_step.parquet")
    paths = pd.read_parquet(tmp_path / "out" / "paths")
    counts = {y: int((paths[f"revenue_{y}"] == 0).sum()) for y in range(2026, 2031)}
    assert counts[2026] == 400 and counts[2027] == 0 and 0 < counts[2028] < 400  # every case, in one run
    margins = by_year[by_year["variable"] == "gross_margin"].set_index("year")
    for y, count in counts.items():
        assert summary.loc[f"gross_margin_{y}_n_undefined", "value"] == count
        assert margins.loc[y, "n_undefined"] == count
        gm = paths.loc[paths[f"revenue_{y}"] > 0, f"gross_margin_{y}"].to_numpy()
        if count == 400:
            assert summary.loc[f"gross_margin_{y}_q50"].isna().all() and np.isnan(margins.loc[y, "mean"])
            continue
        np.testing.assert_allclose(margins.loc[y, "mean"], gm.mean(), rtol=1e-12)
        assert summary.loc[f"gross_margin_{y}_q50", "value"] == np.sort(gm)[math.ceil(gm.size * 0.5) - 1]
        assert np.isfinite(summary.loc[f"gross_margin_{y}_q50"]).all()
    assert (by_year["n_undefined"][by_year["variable"] != "gross_margin"] == 0).all()
    undefined = [f"gross_margin_{y}_{qname(q)}" for y, count in counts.items() if count == 400 for q in QUANTILES]
    assert not summary.drop(index=undefined).isna().any().any()
    # by_step: a step's gross margin over the paths with revenue in the step ("paths"), NaN where there are none.
    steps = by_step[by_step["variable"] == "gross_margin"]
    assert (steps["paths"][steps["date"] < dt.date(2027, 3, 1)] == 0).all()
    assert (steps["mean"].isna() == (steps["paths"] == 0)).all()
    assert not by_step[by_step["variable"] != "gross_margin"].drop(columns="date").isna().any().any()


def test_a_streamed_gross_margin_leaves_out_the_years_without_revenue(base_raw):
    """The histograms' totals leave NaN out, so a streamed run's mean gross margin is that of the defined values,
    as the exact run's is (to the rounding of another order of summation)."""
    cfg = validate(only_segment_launching_in_2027(base_raw))
    exact = run(cfg, 3000, seed=5)
    streamed = run(cfg, 3000, seed=5, keep_paths="none")
    assert streamed.metadata["quantiles"] == "streamed histograms"
    for res in (exact, streamed):
        margins = res.by_year[res.by_year["variable"] == "gross_margin"].set_index("year")
        assert margins.loc[2026, "n_undefined"] == 3000 and margins.loc[2027, "n_undefined"] == 0
    a, b = (r.by_year.set_index(["year", "variable"]).loc[(2027, "gross_margin")] for r in (exact, streamed))
    np.testing.assert_allclose(b["mean"], a["mean"], rtol=1e-12)
    np.testing.assert_allclose(b["mean_stderr"], a["mean_stderr"], rtol=1e-9)


@pytest.mark.parametrize("table", ["summary", "by_year", "by_step"])
def test_any_other_nan_in_an_output_table_is_refused(base_raw, table):
    """The invariant check of the tables: a NaN outside the gross margin's undefined case (here, planted in a
    revenue sample or in the per-step trace) stops the run with one line instead of being written."""
    cfg = validate(base_raw)
    sim = simulate(cfg, 50, seed=2)
    broken = dict(sim.samples)
    values = np.sort(np.append(sim.samples["revenue_2028"].sorted[1:], np.nan))
    broken["revenue_2028"] = SortedSample(values, ordered=values)
    with pytest.raises(InvariantError, match=f"{table}: nan in column") as error:
        if table == "summary":
            summary_frame(cfg, 50, sim.counts, broken)
        elif table == "by_year":
            by_year_frame(cfg, broken)
        else:
            steps = trace_steps(Model.of(cfg), 50, seed=2)
            steps[7, 3, 3] = np.nan  # a path's cash at a step's end
            by_step_frame(cfg, cfg.simulation.steps_per_year, steps)
    assert "\n" not in str(error.value)


def test_contingent_raises_beyond_the_step_count_are_the_step_count(base_raw):
    """Issue 35: max_raises = 2**64 crashed the kernel's typing; at most one raise a step can happen, so the cap is
    the step count, and the paths are those of any cap at least as large."""
    base_raw["funding"]["min_cash"] = 80.0  # raises in most steps
    results = []
    for cap in (2**64, 10**400, 20):
        base_raw["funding"]["contingent"].update(max_raises=cap, cooldown=0.0)
        cfg = validate(base_raw)
        assert build_inputs(cfg).max_raises == 20
        results.append(simulate(cfg, 500, seed=8))
    for other in results[1:]:
        assert np.array_equal(other.scalars, results[0].scalars)
    assert results[0].scalars[:, kernel.S_N_RAISES].max() > 3


# ---------------------------------------------------------------- model v2: revenue ceilings
@pytest.mark.parametrize("spy", [1, 4, 12])
def test_ceiling_caps_deterministic_growth_as_the_logistic_says(base_raw, spy):
    """dR/dt = g(t) R (1 - R / C): R(t) = C / (1 + (C / R0 - 1) e^{-S(t)}), S the integral of g. The kernel
    integrates it exactly at the steps' ends; each year's revenue is the run-rate's integral to the step's
    curvature correction (~1e-3 at yearly steps, far less at monthly ones)."""
    raw = one_segment_world(base_raw, g0=0.9, ginf=0.1, half_life=1.5)
    raw["revenue"]["core"]["ceiling"] = 60.0
    raw["simulation"]["steps_per_year"] = spy
    cfg = validate(raw)
    kappa, ceiling = math.log(2) / 1.5, 60.0

    def run_rate(t):
        growth = 0.1 * t + 0.8 * (1 - math.exp(-kappa * t)) / kappa
        return ceiling / (1 + (ceiling / 10 - 1) * math.exp(-growth))

    trace = reference.simulate_path(build_inputs(cfg), 1, 0)["trace"]
    np.testing.assert_allclose([s["run_rate"] for s in trace], [run_rate(s["t_end"]) for s in trace], rtol=1e-12)
    revenue = yearly(simulate(cfg, 1, seed=1).annual)["revenue"][0]
    for i in range(len(cfg.years)):
        expected = integrate.quad(run_rate, i, i + 1, epsabs=0, epsrel=1e-12)[0]
        assert revenue[i] == pytest.approx(expected, rel={1: 3e-3, 4: 2e-4, 12: 3e-5}[spy])
    assert run_rate(5.0) < ceiling and revenue[-1] < ceiling  # capped: without it the 2030 run-rate is ~75


def test_ceiling_leaves_shrinking_segments_alone_and_pulls_overshoots_back(base_raw):
    """Growth at or below 0 is untouched by a ceiling; a run-rate above its ceiling (the ceiling is soft)
    with positive growth declines toward it."""
    raw = one_segment_world(base_raw, g0=-0.2, ginf=-0.2)
    plain = yearly(simulate(validate(raw), 1, seed=1).annual)["revenue"]
    raw["revenue"]["core"]["ceiling"] = 12.0
    capped = yearly(simulate(validate(raw), 1, seed=1).annual)["revenue"]
    assert np.array_equal(plain, capped)
    raw = one_segment_world(base_raw, g0=0.3, ginf=0.3)
    raw["revenue"]["core"]["ceiling"] = {"dist": "uniform", "low": 6.0, "high": 15.0}  # some paths start above
    cfg = validate(raw)
    inputs = build_inputs(cfg)
    for path in range(40):
        result = reference.simulate_path(inputs, 3, path)
        cap = result["theta"][0]
        rates = [10.0] + [s["run_rate"] for s in result["trace"]]
        if cap < 10.0:  # above its ceiling: falls toward it, never below
            assert all(cap < b < a for a, b in zip(rates, rates[1:]))
        else:
            assert all(a < b < cap for a, b in zip(rates, rates[1:]))


def test_segments_without_a_ceiling_have_v1_revenue(base_raw):
    """A segment without a ceiling runs v1's revenue code: the same revenue bit for bit as before the ceilings,
    here as a config whose other segments have one (each segment's revenue depends on its own parameters)."""
    for seg in base_raw["revenue"].values():
        seg.pop("ceiling", None)
    base_raw["judgments"] = {}
    base_raw["revenue"] = {"consumer": base_raw["revenue"]["consumer"]}
    base_raw["shocks"] = {}
    base_raw["parameter_correlation"] = {}
    plain = simulate(validate(base_raw), 2000, seed=5).annual[:, kernel.A_REV]
    base_raw["revenue"]["consumer"]["ceiling"] = 1e9  # a ceiling that changes growth by a few 1e-8 at most
    capped = simulate(validate(base_raw), 2000, seed=5).annual[:, kernel.A_REV]
    assert not np.array_equal(plain, capped)
    np.testing.assert_allclose(plain, capped, rtol=1e-6)


# ---------------------------------------------------------------- model v2: funding that can fail
def always_raising_world(raw, *, initial_cash, distress_limit, distress_factor=0.5, spy=4):
    """Cash far under the floor on every path, a raise tried every step (no cooldown, no cap on the count) with
    intensity 1 a year on normal terms (logit 50), each raise a token 0.01 so cash never recovers."""
    quiet_world(raw)
    raw["simulation"]["steps_per_year"] = spy
    raw["funding"]["initial_cash"] = initial_cash
    raw["funding"]["scheduled"] = {}
    raw["funding"]["credit"]["limit"] = 0.0
    raw["funding"]["contingent"].update(intercept=50.0, revenue_slope=0.0, market_slope=0.0, size_multiple=1.0,
                                        size_cap=0.01, max_raises=1000, cooldown=0.0, lookahead=1.0,
                                        distress_limit=distress_limit, distress_factor=distress_factor,
                                        distress_size=0.5)
    return validate(raw)


def test_no_raise_closes_below_minus_the_distress_limit(base_raw):
    cfg = always_raising_world(copy_raw(base_raw), initial_cash=-50.0, distress_limit=0.0)
    sim = simulate(cfg, 4000, seed=8)
    assert (sim.scalars[:, kernel.S_N_RAISES] == 0).all()
    cfg = always_raising_world(copy_raw(base_raw), initial_cash=-50.0, distress_limit=1e6)
    sim = simulate(cfg, 4000, seed=8)
    assert (sim.scalars[:, kernel.S_N_RAISES] > 0).mean() > 0.9


@pytest.mark.parametrize("factor", [0.25, 1.0])
def test_distress_cuts_the_intensity_and_the_size(base_raw, factor):
    """Under the floor every step: raises are Bernoulli(1 - e^{-factor dt}) a step, each of distress_size x 0.01."""
    cfg = always_raising_world(copy_raw(base_raw), initial_cash=5.0, distress_limit=1e6, distress_factor=factor)
    n = 20_000
    scalars = simulate(cfg, n, seed=9).scalars
    count = scalars[:, kernel.S_N_RAISES]
    np.testing.assert_allclose(scalars[:, kernel.S_RAISED_CONTINGENT], 0.005 * count, rtol=1e-12)
    steps, p = 20, 1 - math.exp(-factor / 4)
    assert abs(count.mean() - steps * p) < 4 * math.sqrt(steps * p * (1 - p) / n)


def test_credit_interest_reduces_cash_by_rate_times_drawn_times_dt(base_raw):
    """A line drawn to its limit from the first step on: each year's FCF is lower by rate x drawn x dt a step,
    on the amount drawn at the step's start (nothing in the first step); the cash identity still holds."""
    raw = quiet_world(base_raw)
    raw["funding"].update(initial_cash=-20.0, scheduled={})
    raw["funding"]["contingent"]["max_raises"] = 0
    raw["funding"]["credit"]["limit"] = 6.0
    fcf = {}
    for rate in (0.0, 0.07):
        raw["funding"]["credit"]["rate"] = rate
        sim = simulate(validate(raw), 2, seed=1)
        fcf[rate] = yearly(sim.annual)["fcf"][0]
        assert (sim.scalars[:, kernel.S_CREDIT_END] == 6.0).all()
    drawn_steps = np.array([3] + [4] * 4)  # steps a year that start with the line drawn
    np.testing.assert_allclose(fcf[0.0] - fcf[0.07], 0.07 * 6.0 * 0.25 * drawn_steps, rtol=1e-9)


def test_survival_mode_switches_on_in_shortfall_and_off_with_a_year_of_runway(base_raw):
    """On at every step end in shortfall, off at the first step end with cash >= min_cash + lookahead x burn,
    unchanged in between; flexible training is cut in the step after a step end in survival mode."""
    base_raw["funding"]["min_cash"] = 45.0  # in shortfall at the start, out of it when the 2026 round pays
    base_raw["funding"]["contingent"]["lookahead"] = 0.25
    base_raw["training"]["runway_floor"] = 0.0  # v1's runway rule off: every cut is survival mode's
    cfg = validate(base_raw)
    inputs = build_inputs(cfg)
    lookahead, min_cash, cut_factor = 0.25, 45.0, cfg.training.cut_factor.value
    seen = set()
    for path in range(60):
        trace = reference.simulate_path(inputs, 4, path)["trace"]
        fcfs = [-cfg.funding.initial_burn / 4] * 4
        on = False
        for k, step in enumerate(trace):
            assert step["cut"] == (cut_factor if on else 1.0)
            fcfs = fcfs[1:] + [step["fcf"]]
            burn = max(0.0, -sum(fcfs))
            was = on
            on = step["cash"] < min_cash or (on and step["cash"] < min_cash + lookahead * burn)
            assert step["survival"] == on, (path, k)
            seen.add((was, on))
    assert {(False, True), (True, False), (True, True)} <= seen


def test_default_run_closes_no_raise_at_negative_cash(base_raw):
    """The v1 review's path 52 (60 raised at cash -98.5) and every path of a default run that both raised and
    went below 0: replayed with the reference, no contingent raise closes while cash is below 0."""
    cfg = validate(base_raw)
    sim = simulate(cfg, 20_000, seed=cfg.simulation.seed)
    suspects = np.flatnonzero((sim.scalars[:, kernel.S_N_RAISES] > 0) & (sim.scalars[:, kernel.S_LOWEST_CASH] < 0))
    inputs = build_inputs(cfg)
    checked = 0
    for path in sorted({52, *suspects[:150].tolist()}):
        for step in reference.simulate_path(inputs, cfg.simulation.seed, int(path))["trace"]:
            if step["raised_contingent"] > 0:
                assert step["cash_at_raise"] >= 0.0, (path, step)
                checked += 1
    assert checked > 0


@pytest.mark.slow
def test_steps_per_year_agree_on_shortfall_and_raises(base_raw):
    """4 and 12 steps a year: P(shortfall by 2030) and the mean raise count agree within Monte Carlo error
    (4 combined standard errors; runs are independent), with shortfall read at the years' ends. What this tests
    is the conversion of the yearly intensity (and of the market factor's persistence) to a step: the rules
    that read the state at a step's end, and so act later at longer steps, are set aside. One raise of a fixed
    30 is tried at every step (a trigger that always holds, no distress terms), and flexible training is not
    cut; revenue, costs, the market factor and the scheduled raises are base's.

    At 1 step a year the same config gives P(shortfall) ~0.16 against ~0.135 and a raise count ~0.83 against
    ~0.87 (40,000 paths): step-end rules lag by a year there. Most of the shortfall gap is v1's (interest on
    the step's starting cash, the plan ratio at the step's start; 0.27 vs 0.24 without any contingent raise);
    the raise count's is the intensity read at the step's end while revenue falls behind a plan that grows
    faster, and the Riemann sum of a random intensity over a year (0.944 vs 0.951 with revenue_slope 0)."""
    base_raw["training"].update(runway_floor=0.0, cut_factor=1.0)
    # Rules of the step set aside: utilisation (contracts) and a large training plan decided on the plan ratio at
    # the step's start. With base's own (solved) plan the two step sizes differ by ~0.015 in P(shortfall) (4
    # standard errors at 40,000 paths): a known step-size effect of those rules, not of the intensity.
    base_raw["compute"]["contracts"] = {}
    base_raw["training"]["plan"] = {"2026": 14.0, "2027": 32.0, "2028": 48.0, "2029": 55.0, "2030": 60.0}
    base_raw["funding"]["contingent"].update(lookahead=100.0, max_raises=1, cooldown=0.0, size_multiple=100.0,
                                             size_cap=30.0, distress_factor=1.0, distress_size=1.0,
                                             distress_limit=1e6)
    n = 40_000
    out = {}
    for spy in (4, 12):
        base_raw["simulation"]["steps_per_year"] = spy
        sim = simulate(validate(base_raw), n, seed=300 + spy)
        short = (sim.annual[:, kernel.A_CASH] < base_raw["funding"]["min_cash"]).any(axis=1)
        out[spy] = (short, sim.scalars[:, kernel.S_N_RAISES])
    for k in range(2):
        xa, xb = out[4][k].astype(float), out[12][k].astype(float)
        se = math.sqrt(xa.var() / n + xb.var() / n)
        assert abs(xa.mean() - xb.mean()) < 4 * se, (k, xa.mean(), xb.mean())


# ---------------------------------------------------------------- compute contracts (model v2)
def contract_world(raw, *, resale=0.0):
    """One segment growing 50% a year, no randomness, compute at P = U = 1, training at its plan (beta = 0), yearly
    steps (one utilisation a year), one contract: 2026 far above demand, 2027 at about demand, 2028 far below,
    none in 2029, 2030 half of it; 40 more owed in 2031."""
    raw = one_segment_world(raw, g0=0.5, ginf=0.5)
    raw["simulation"]["steps_per_year"] = 1
    raw["compute"]["resale"] = resale
    raw["compute"]["contracts"] = {"big": {"amount": {"2026": 60.0, "2027": 40.0, "2028": 10.0, "2030": 30.0,
                                                      "2031": 50.0},
                                           "unit_price": 0.8, "take_or_pay": 0.75}}
    return raw


@pytest.mark.parametrize("resale", [0.0, 0.5])
def test_contracts_utilisation_idle_and_spot_by_hand(base_raw, resale):
    """Every volatility 0, one step a year: demand D = 0.6 revenue + plan units, capacity K = amount / 0.8,
    u = min(1, D / K), used u amount, idle (1 - u) 0.75 amount, spot max(0, D - K), resale r max(0, K - D);
    COGS the inference share of used + spot; FCF pays used + idle + spot - resale."""
    cfg = validate(contract_world(base_raw, resale=resale))
    results = run(cfg, 2, seed=1)
    paths = results.paths
    amounts = {"2026": 60.0, "2027": 40.0, "2028": 10.0, "2029": 0.0, "2030": 30.0}
    cash = 40.0
    for i, y in enumerate(cfg.years):
        revenue = 10 * math.exp(0.5 * i) * (math.exp(0.5) - 1) / 0.5
        opex = 3 * math.exp(0.2 * i) * (math.exp(0.2) - 1) / 0.2 + 0.2 * revenue
        units_inf, units_tr = 0.6 * revenue, cfg.training.plan[str(y)]
        demand = units_inf + units_tr
        amount = amounts[str(y)]
        capacity = amount / 0.8
        u = min(1.0, demand / capacity) if capacity > 0 else 1.0
        used, idle = u * amount, (1 - u) * 0.75 * amount
        spot, resold = max(0.0, demand - capacity), resale * max(0.0, capacity - demand)
        cogs = units_inf / demand * (used + spot)
        spend = used + idle + spot - resold
        fcf = revenue * (1 - cfg.costs.partner_share[str(y)]) - opex - spend
        cash += fcf
        expected = {"compute_units": demand, "contract_spend": used, "idle_compute": idle, "spot_spend": spot,
                    "compute_resale": resold, "utilisation": u, "compute_spend": spend, "fcf": fcf, "cash": cash,
                    "gross_margin": 1 - cogs / revenue, "compute_margin": 1 - (cogs + idle - resold) / revenue}
        for var, want in expected.items():
            np.testing.assert_allclose(paths[f"{var}_{y}"], want, rtol=1e-10, atol=1e-12, err_msg=f"{var} {y}")
    # The cases the contract was built for: idle capacity, full use with spot beyond it, no contract at all.
    assert paths["utilisation_2026"].iloc[0] < 0.9 and paths["idle_compute_2026"].iloc[0] > 0
    assert paths["utilisation_2028"].iloc[0] == 1.0 and paths["spot_spend_2028"].iloc[0] > 0
    assert paths["utilisation_2029"].iloc[0] == 1.0 and paths["contract_spend_2029"].iloc[0] == 0.0
    assert (paths["committed_after_end"] == 0.75 * 50.0).all()
    assert results.metric("committed_after_end").value == 0.75 * 50.0


def test_without_contracts_compute_is_v1_spot_compute(base_raw):
    """No contract: every unit is bought at spot, so compute spend is P times demand, nothing idle, u = 1."""
    base_raw["compute"]["contracts"] = {}
    paths = run(validate(base_raw), 500, seed=2).paths
    for y in validate(base_raw).years:
        assert (paths[f"utilisation_{y}"] == 1.0).all() and (paths[f"idle_compute_{y}"] == 0).all()
        assert (paths[f"contract_spend_{y}"] == 0).all()
        np.testing.assert_allclose(paths[f"compute_spend_{y}"], paths[f"spot_spend_{y}"], rtol=1e-12)
    assert (paths["committed_after_end"] == 0).all()


def test_supply_shocks_fade_with_their_half_life(base_raw):
    """ln P = trend + J, J halving every h_J years, a shock's ln(1 + S) added at its step's end: E[ln P(t_k)] =
    (mu - s^2/2) t_k + lambda dt ln(1 + S) sum_{i <= k} 2^(-(k - i) dt / h_J)."""
    raw = quiet_world(base_raw)
    mu, sigma, lam, size, half_life = -0.3, 0.1, 1.0, 0.4, 0.75
    raw["compute"].update(price_drift=mu, price_sigma=sigma, supply_shock_intensity=lam, supply_shock_size=size,
                          supply_shock_half_life=half_life)
    inputs = build_inputs(validate(raw))
    n, dt = 4000, 0.25
    log_prices = np.log([[s["price"] for s in reference.simulate_path(inputs, 11, i)["trace"]] for i in range(n)])
    k = np.arange(log_prices.shape[1])
    t = (k + 1) * dt
    fade = np.array([sum(2.0 ** (-(j - i) * dt / half_life) for i in range(j + 1)) for j in k])
    log_mean = (mu - sigma**2 / 2) * t + lam * dt * math.log(1 + size) * fade
    log_sd = np.sqrt(sigma**2 * t + lam * dt * math.log(1 + size) ** 2 * (fade + 1))
    np.testing.assert_array_less(np.abs(log_prices.mean(axis=0) - log_mean), 4 * log_sd / math.sqrt(n))
    # Long after, the deviation is gone: it does not pile up as v1's jumps did (2 a year for 5 years).
    assert log_mean[-1] - (mu - sigma**2 / 2) * t[-1] < 0.5 * lam * 5 * math.log(1 + size)


def test_compute_outputs_add_up_and_the_idle_metric_counts_the_paths(base_raw):
    """Per path and year: compute spend = contract spend + idle + spot - resale; utilisation in [0, 1];
    p_idle_compute_over_10_by_2030 the share of paths with idle payments over 10 in some year."""
    base_raw["compute"]["resale"] = 0.3
    cfg = validate(base_raw)
    results = run(cfg, 3000, seed=5)
    paths = results.paths
    any_idle = np.zeros(len(paths), bool)
    for y in cfg.years:
        parts = (paths[f"contract_spend_{y}"] + paths[f"idle_compute_{y}"] + paths[f"spot_spend_{y}"]
                 - paths[f"compute_resale_{y}"])
        np.testing.assert_allclose(paths[f"compute_spend_{y}"], parts, rtol=1e-10, atol=1e-9)
        for name in ("compute_units", "contract_spend", "spot_spend", "idle_compute", "compute_resale",
                     "utilisation", "compute_margin"):
            assert np.isfinite(paths[f"{name}_{y}"]).all(), (name, y)
        assert ((paths[f"utilisation_{y}"] >= 0) & (paths[f"utilisation_{y}"] <= 1)).all()
        any_idle |= paths[f"idle_compute_{y}"].to_numpy() > 10.0
    assert results.metric("p_idle_compute_over_10_by_2030").value == pytest.approx(any_idle.mean(), abs=1e-12)
    assert 0 < any_idle.mean() < 1
    total = paths["compute_spend_total"]
    for q in (0.05, 0.5, 0.95):
        assert results.metric(f"compute_spend_total_q{round(q * 100):02d}").value == pytest.approx(
            np.quantile(total, q), rel=0.02)


@pytest.mark.parametrize("key, value, expect", [
    ("committed", {"2026": 0.5}, "training.committed was replaced by [compute.contracts.<name>]"),
    ("deferrable", 0.1, "training.deferrable was replaced by take_or_pay of [compute.contracts.<name>]"),
])
def test_an_old_config_with_v1_take_or_pay_is_told_what_replaced_it(base_raw, key, value, expect):
    base_raw["training"][key] = value
    with pytest.raises(ConfigError, match=re.escape(expect)) as info:
        validate(base_raw)
    assert "\n" not in str(info.value) and "docs/model.md" in str(info.value)


@pytest.mark.parametrize("change, expect", [
    ({"amount": {"2027": -5.0}}, "compute.contracts.bad.amount.2027 = -5.0"),
    ({"amount": {"2027": 5.0}, "take_or_pay": 1.5}, "compute.contracts.bad.take_or_pay = 1.5"),
    ({"amount": {"2027": 5.0}, "take_or_pay": -0.1}, "compute.contracts.bad.take_or_pay = -0.1"),
    ({"amount": {"2027": 5.0}, "unit_price": 0.0}, "compute.contracts.bad.unit_price"),
    ({"amount": {"2025": 5.0}}, "compute.contracts.bad.amount.2025: a year before the start"),
    ({"amount": {"2027": 5.0}, "unit_price": {"2026": 1.0}}, "compute.contracts.bad.unit_price: no value for 2027"),
])
def test_a_bad_contract_is_one_line_naming_its_key(base_raw, change, expect):
    base_raw["compute"]["contracts"]["bad"] = change
    with pytest.raises(ConfigError, match=re.escape(expect)) as info:
        validate(base_raw)
    assert "\n" not in str(info.value)
