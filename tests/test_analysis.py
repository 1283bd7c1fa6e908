"""Analysis commands: sensitivity, paired comparison, PRIM discovery and solving (simulator.analysis)."""

import copy
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import simulator
from simulator import analysis
from simulator.cli import main
from simulator.config import validate
from simulator.stats import with_error

from conftest import BASE_RAW, set_key

# A config where supply_shock_size is drawn but can do nothing (no supply shock ever happens),
# beside a few strong drivers (drawn over wide ranges); every other parameter is fixed at its median, and no
# compute is contracted.
DRIVERS = ["costs.opex_base", "compute.price_drift", "compute.gross_margin_0", "costs.opex_revenue_ratio"]
NULL_PARAM = "compute.supply_shock_size"


def null_parameter_config():
    raw = copy.deepcopy(BASE_RAW)
    raw["name"] = "null_parameter"
    raw["parameter_correlation"] = {}
    for key, dist in validate(raw).parameters().items():
        if dist.dist != "fixed" and key not in (*DRIVERS, NULL_PARAM):
            set_key(raw, key, dist.quantile(0.5))
    raw["compute"]["supply_shock_intensity"] = 0.0
    raw["compute"]["contracts"] = {}  # all compute at spot, so that the price's drift drives the outcome
    for segment in raw["revenue"].values():
        segment.pop("ceiling", None)  # growth drives revenue without a market's limit
    raw["funding"]["min_cash"] = 60.0  # a floor that about a third of the paths cross: swings can show
    raw["compute"]["price_drift"] = {"dist": "normal", "p5": -0.35, "p95": -0.25}
    raw["costs"]["opex_base"] = {"dist": "lognormal", "p5": 1.0, "p95": 15.0}
    raw["compute"]["gross_margin_0"] = {"dist": "uniform", "low": 0.0, "high": 0.7}
    raw["costs"]["opex_revenue_ratio"] = {"dist": "uniform", "low": 0.05, "high": 0.5}
    return validate(raw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Small runs of the base config (min_cash 10 and 15, same seed), and the null-parameter run."""
    root = tmp_path_factory.mktemp("analysis")
    base = simulator.load_config()
    simulator.run(base, 6000, 5, root / "a")
    simulator.run(simulator.load_config(None, ["funding.min_cash=15"]), 6000, 5, root / "b")
    simulator.run(null_parameter_config(), 20_000, 3, root / "null")
    return root


def test_ranks_and_spearman_match_scipy(rng):
    from scipy.stats import spearmanr

    x = rng.integers(0, 6, 400).astype(float)  # many ties
    y = x + rng.normal(size=400)
    assert np.allclose(analysis._ranks(x), pd.Series(x).rank().to_numpy())
    rho, se = analysis.spearman(x, y)
    assert rho == pytest.approx(spearmanr(x, y)[0], abs=1e-12)
    assert se == pytest.approx((1 - rho ** 2) * np.sqrt(1.06 / 397))
    assert np.isnan(analysis.spearman(np.ones(10), np.arange(10.0))[0])


def test_sensitivity_ranks_a_parameter_without_effect_last(runs):
    folder = runs / "null"
    result = CliRunner().invoke(main, ["sensitivity", str(folder)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and NULL_PARAM in result.output
    table = pd.read_parquet(folder / "sensitivity.parquet")
    assert table["rank"].tolist() == list(range(1, len(DRIVERS) + 2))
    assert set(table["parameter"]) == {*DRIVERS, NULL_PARAM}
    by_name = table.set_index("parameter")
    null = by_name.loc[NULL_PARAM]
    assert table["parameter"].iloc[-1] == NULL_PARAM
    for col in ("rho_fcf_2030", "rho_funding_gap", "p_shortfall_by_2030_swing", "p_fcf_positive_2030_swing"):
        assert abs(null[col]) < 3 * null[f"{col}_se"], col
    # The strong drivers are far from zero.
    for key in DRIVERS:
        row = by_name.loc[key]
        assert abs(row["p_shortfall_by_2030_swing"]) > 5 * row["p_shortfall_by_2030_swing_se"], key
        assert abs(row["rho_fcf_2030"]) > 10 * row["rho_fcf_2030_se"], key
    assert by_name.loc["costs.opex_base", "rho_fcf_2030"] < 0  # signs: more cost, less cash
    assert by_name.loc["compute.price_drift", "p_shortfall_by_2030_swing"] > 0
    # Swing = top - bottom, deciles of a tenth of the paths each.
    assert np.allclose(table["p_shortfall_by_2030_swing"],
                       table["p_shortfall_by_2030_top"] - table["p_shortfall_by_2030_bottom"])
    assert (table["n_bottom"] == 2000).all() and (table["n_top"] == 2000).all()
    # The run's metadata comes along, and the run folder still reads (the manifest is untouched).
    meta = json.loads(pq.read_schema(folder / "sensitivity.parquet").metadata[b"simulator"])
    run = simulator.read_results(folder)
    assert meta["config_hash"] == run.metadata["config_hash"] and meta["analysis"]["paths_used"] == 20_000
    top = CliRunner().invoke(main, ["sensitivity", str(folder), "--top", "2"])
    assert top.exit_code == 0 and NULL_PARAM not in top.output.split("more in the file")[0]


def test_sensitivity_uses_a_sample_and_says_so(tmp_path):
    simulator.run(simulator.load_config(), 3000, 1, tmp_path / "s", keep_paths="sample:1000")
    result = CliRunner().invoke(main, ["sensitivity", str(tmp_path / "s"), "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "1,000 of 3,000 paths" in result.output
    assert pd.read_parquet(tmp_path / "s" / "sensitivity.parquet")["n_bottom"].iloc[0] == 100
    simulator.run(simulator.load_config(), 300, 1, tmp_path / "none", keep_paths="none")
    result = CliRunner().invoke(main, ["sensitivity", str(tmp_path / "none")])
    assert result.exit_code == 1 and "--keep-paths all" in result.output


def test_compare_pairs_paths_and_shrinks_the_error(runs, tmp_path):
    a, b = simulator.read_results(runs / "a"), simulator.read_results(runs / "b")
    table = analysis.compare(a, b).table.set_index("metric")
    # The per-path figures reproduce each run's own summary.
    for name in ["p_fcf_positive_2030", *(f"p_shortfall_by_{y}" for y in range(2026, 2031)),
                 "p_revenue_2030_at_least_plan"]:
        assert table.loc[name, "a"] == a.metric(name).value and table.loc[name, "b"] == b.metric(name).value, name
    assert table.loc["funding_gap_mean", "a"] == pytest.approx(a.metric("funding_gap_mean").value)
    sf = table.loc["p_shortfall_by_2030"]
    assert sf["diff"] > 0 and sf["ci_low"] > 0                      # a higher floor: more shortfalls
    assert sf["se_paired"] < sf["se_unpaired"] / 2                  # common random numbers
    assert table.loc["revenue_2030_mean", "diff"] == 0 and table.loc["revenue_2030_mean", "se_paired"] == 0
    out = tmp_path / "cmp.parquet"
    result = CliRunner().invoke(main, ["compare", str(runs / "a"), str(runs / "b"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "se paired" in result.output and "p_shortfall_by_2030" in result.output
    written = pd.read_parquet(out)
    assert list(written.columns) == ["metric", "a", "b", "diff", "se_paired", "se_unpaired", "ci_low", "ci_high"]


def test_compare_notes_runs_of_different_versions(runs):
    a, b = simulator.read_results(runs / "a"), simulator.read_results(runs / "b")
    assert analysis.compare(a, b).notes == []
    b.metadata["simulator_version"] = "0.0.1"
    notes = analysis.compare(a, b).notes
    assert len(notes) == 1 and f"simulator {simulator.__version__} and 0.0.1" in notes[0]


def test_compare_refuses_runs_that_cannot_be_paired(runs, tmp_path):
    cfg = simulator.load_config()
    simulator.run(cfg, 6000, 6, tmp_path / "seed6")
    simulator.run(cfg, 5000, 5, tmp_path / "n5000")
    simulator.run(cfg, 6000, 5, tmp_path / "sample", keep_paths="sample:100")
    runner = CliRunner()
    for other, words in (("seed6", "same seed"), ("n5000", "same path count"), ("sample", "--keep-paths all")):
        result = runner.invoke(main, ["compare", str(runs / "a"), str(tmp_path / other)])
        assert result.exit_code == 1 and words in result.output, result.output


def test_prim_finds_a_known_box(rng):
    n = 20_000
    frame = pd.DataFrame(rng.uniform(size=(n, 6)), columns=[f"x{i}" for i in range(6)])
    inside = (frame["x0"] > 0.6) & (frame["x2"] < 0.3)
    y = (inside ^ (rng.uniform(size=n) < 0.05)).to_numpy()  # 5% label noise
    result = analysis.prim(frame, y, min_coverage=0.65, max_params=3)
    assert set(result.box.bounds) == {"x0", "x2"}
    lo0, hi0 = result.box.bounds["x0"]
    lo2, hi2 = result.box.bounds["x2"]
    assert 0.57 < lo0 < 0.66 and hi0 == np.inf and lo2 == -np.inf and 0.25 < hi2 < 0.33
    stats = analysis.box_stats(result.box, frame, y)
    assert stats.coverage >= 0.65 and stats.density > 0.9 and stats.base_rate < 0.2
    assert result.trajectory["density"].is_monotonic_increasing
    # At most max_params restrictions, the most important kept.
    one = analysis.prim(frame, y, min_coverage=0.65, max_params=1)
    assert len(one.box.bounds) == 1 and set(one.box.bounds) <= {"x0", "x2"}
    assert "x0 >=" in result.box.conditions() and "x2 <=" in result.box.conditions()
    with pytest.raises(ValueError, match="never"):
        analysis.prim(frame, np.zeros(n, bool))


def test_discover_command(runs):
    result = CliRunner().invoke(main, ["discover", str(runs / "a"), "--outcome", "fcf_negative", "--max-params", "2"])
    assert result.exit_code == 0, result.output
    assert "box: " in result.output and "coverage" in result.output and "density" in result.output
    box_line = next(line for line in result.output.splitlines() if line.startswith("box: "))
    assert 1 <= box_line.count(" and ") + 1 <= 2
    # The box restricts one of the strongest drivers of 2030 FCF, as the sensitivity table ranks them.
    table = analysis.sensitivity(simulator.read_results(runs / "a"), runs / "a").table
    top = table.reindex(table["rho_fcf_2030"].abs().sort_values(ascending=False).index)["parameter"].head(3)
    assert any(name in box_line for name in top), (box_line, list(top))
    result = CliRunner().invoke(main, ["discover", str(runs / "a"), "--outcome", "bogus"])
    assert result.exit_code == 2


def test_solve_recovers_a_known_value(runs):
    observed = simulator.run(simulator.load_config(None, ["funding.min_cash=12"]), 3000, 9).metric(
        "p_shortfall_by_2030").value
    sol = analysis.solve(None, "p_shortfall_by_2030", observed, "funding.min_cash", n_paths=3000, seed=9, tol=0.05)
    # Bisection stops at the bracket width, or earlier on a value where the metric hits the target
    # exactly (a probability moves in steps of 1/3000 with common random numbers).
    assert sol.evaluations <= 12
    assert sol.bracket[1] - sol.bracket[0] <= 0.05 or sol.estimate == observed
    assert abs(sol.estimate - observed) <= 1 / 3000 + 1e-12
    assert abs(sol.value - 12) < 2
    assert [x for x, _ in sol.history[:3]] == [5, 15, 10]  # default bracket: +-50% around 10
    assert sol.stderr == pytest.approx(np.sqrt(sol.estimate * (1 - sol.estimate) / 3000))


@pytest.mark.parametrize("value, error, text", [
    (0.4213, 0.031, "0.42 ± 0.03"), (59.6484, 0.676, "59.6 ± 0.7"), (1234.5, 56, "1230 ± 60"),
    (0.5001, 0.00354, "0.500 ± 0.004"), (0.42, 0.014, "0.420 ± 0.014"), (0.42, 0.0096, "0.420 ± 0.010"),
    (-0.0001, 0.03, "0.00 ± 0.03"), (3.14159, 1.6, "3 ± 2"), (12.3456, float("nan"), "12.3456")])
def test_an_answer_is_rounded_to_its_error(value, error, text):
    assert with_error(value, error) == text


def test_solve_errors_and_command():
    with pytest.raises(ValueError, match="is a distribution"):
        analysis.solve(None, "p_shortfall_by_2030", 0.1, "funding.initial_cash", n_paths=500)
    with pytest.raises(ValueError, match="not between them"):
        analysis.solve(None, "p_shortfall_by_2030", 0.9, "funding.min_cash", n_paths=500)
    runner = CliRunner()
    base = simulator.load_config()

    def observed(metric, *overrides):  # the metric of base's paths with one setting: a target the bracket holds
        return simulator.run(simulator.load_config(None, list(overrides)), 1000, base.simulation.seed).metric(
            metric).value

    target = observed("p_shortfall_by_2030", "funding.min_cash=11")
    result = runner.invoke(main, ["solve", "--target", f"p_shortfall_by_2030={target}", "--vary", "funding.min_cash",
                                  "-n", "1000", "--tol", "0.5"])
    assert result.exit_code == 0, result.output
    assert "funding.min_cash = " in result.output and "evaluations" in result.output
    # The answer with its Monte Carlo error, to the digits the error allows.
    answer = next(line for line in result.output.splitlines() if line.startswith("funding.min_cash = "))
    if "±" in answer:
        value, error = answer.removeprefix("funding.min_cash = ").split(" (")[0].split(" ± ")
        decimals = len(value.partition(".")[2])
        assert decimals == len(error.partition(".")[2]) and float(error) > 0
    else:
        assert "Monte Carlo error not measured" in answer
    # A correlated parameter can be solved for: its correlations are dropped, and said so.
    target = observed("p_fcf_positive_2030", "compute.price_drift=-0.3", "parameter_correlation.names=[]",
                      "parameter_correlation.matrix=[]")
    result = runner.invoke(main, ["solve", "--target", f"p_fcf_positive_2030={target}", "--vary",
                                  "compute.price_drift", "--low", "-0.6", "--high", "0", "-n", "1000", "--tol", "0.02",
                                  "-q"])
    assert result.exit_code == 0, result.output
    assert "correlation with compute.usage_drift is dropped" in result.output
    result = runner.invoke(main, ["solve", "--target", "p_fcf_positive_2030", "--vary", "funding.min_cash"])
    assert result.exit_code == 1 and "METRIC=VALUE" in result.output
