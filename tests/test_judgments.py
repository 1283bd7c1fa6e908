"""Judgments (model v2): alternatives built from a config's [judgments], and their paired changes."""

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from simulator.api import run
from simulator.cli import main
from simulator.config import PACKAGED_CONFIGS, ConfigError, load_config, validate
from simulator.judgments import alternatives, check, paired_change


def with_judgments(base_raw, **entries):
    raw = dict(base_raw, judgments=entries)
    return validate(raw)


@pytest.mark.parametrize("path", sorted(PACKAGED_CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_packaged_judgment_fits_its_config(path):
    check(load_config(path))


def test_alternatives_set_values_and_scale_schedules_distributions_and_correlations(base_raw):
    cfg = with_judgments(base_raw,
                         floor={"key": "funding.min_cash", "low": 5, "high": 15, "why": "w"},
                         plan={"key": "training.plan", "scale": [0.5, 2.0], "why": "w"},
                         drift={"key": "compute.price_drift", "scale": [0.5, 2.0], "why": "w"},
                         size={"key": "funding.contingent.size_multiple", "scale": [0.5, 2.0], "why": "w"},
                         severity={"key": "competition.severity", "scale": [0.5, 2.0], "why": "w"},
                         corr={"key": "parameter_correlation", "pair": ["compute.usage_drift", "compute.price_drift"],
                               "low": -0.3, "high": 0.2, "why": "w"})
    alts = {(a.name, a.side): a.config for a in alternatives(cfg)}
    assert len(alts) == 12
    assert alts["floor", "low"].funding.min_cash.value == 5 and alts["floor", "high"].funding.min_cash.value == 15
    assert alts["plan", "high"].training.plan == {y: 2 * v for y, v in cfg.training.plan.items()}
    for name, key in [("drift", "compute.price_drift"), ("size", "funding.contingent.size_multiple"),
                      ("severity", "competition.severity")]:  # normal, lognormal, pert: every quantile scales
        base, low, high = (c.parameters()[key] for c in (cfg, alts[name, "low"], alts[name, "high"]))
        for q in (0.05, 0.5, 0.95):
            assert low.quantile(q) == pytest.approx(0.5 * base.quantile(q), rel=1e-9, abs=1e-12)
            assert high.quantile(q) == pytest.approx(2.0 * base.quantile(q), rel=1e-9, abs=1e-12)
    for side, value in (("low", -0.3), ("high", 0.2)):
        c = alts["corr", side].parameter_correlation
        i, j = c.names.index("compute.price_drift"), c.names.index("compute.usage_drift")
        assert c.matrix[i][j] == c.matrix[j][i] == value
    # Nothing else moves: the alternative differs from the run's config in its key alone.
    other = alts["floor", "low"].resolved()
    other["funding"]["min_cash"] = cfg.resolved()["funding"]["min_cash"]
    assert other == cfg.resolved()


@pytest.mark.parametrize("entry, message", [
    ({"key": "funding.min_cahs", "low": 5, "high": 15}, "judgments.bad: key = 'funding.min_cahs': no such key"),
    ({"key": "compute.price_drift", "low": -0.5, "high": 0.0}, "is drawn (normal): give scale = [low, high]"),
    ({"key": "training.plan", "low": 5, "high": 15}, "is a schedule by year: give scale"),
    ({"key": "parameter_correlation", "pair": ["compute.price_drift", "market"], "low": 0, "high": 0.5},
     "pair names 'market', not in its names"),
    ({"key": "costs.partner_share", "scale": [0.5, 20.0]},
     "judgments.bad: its high alternative is not a valid config"),
    ({"key": "funding.min_cash", "scale": [0.5, -1.0]}, "expected positive factors"),
    ({"key": "funding.min_cash", "low": 5}, "give either low and high"),
    ({"key": "funding.min_cash", "pair": ["a", "b"], "low": 5, "high": 6}, "pair belongs to those keys only"),
])
def test_a_judgment_that_does_not_fit_is_one_clear_error(base_raw, entry, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check(with_judgments(base_raw, bad={**entry, "why": "w"}))


def test_paired_change_of_a_mean_and_a_quantile():
    rng = np.random.default_rng(1)
    base = rng.normal(size=20_000)
    other = base + 0.1 + 0.01 * rng.normal(size=20_000)
    value, change, se = paired_change(base, other, None, 0)
    assert value == base.mean() and change == pytest.approx(0.1, abs=4 * 0.01 / math.sqrt(20_000))
    assert se == pytest.approx(0.01 / math.sqrt(20_000), rel=0.05)
    value, change, se = paired_change(base, base, 0.95, 0)
    assert change == 0 and se == 0  # the same paths: no change, and no error in it
    value, change, se = paired_change(base, other, 0.95, 0)
    unpaired = 2.0 * math.sqrt(0.95 * 0.05 / 20_000) / 0.103  # 2 x the quantile's error (density at q95 ~0.103)
    assert 0 < se < unpaired / 5  # pairing removes almost all of the error of the quantile's change


def test_sensitivity_judgments_pairs_each_alternative_with_the_run(tmp_path, base_raw):
    config = tmp_path / "j.toml"
    config.write_text(f'extends = "{PACKAGED_CONFIGS / "base.toml"}"\nname = "j"\n'
                      '[judgments.price_usage_correlation]\nlow = -0.5\n')  # its low side is the run itself
    out = tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(main, ["run", str(config), "-n", "4000", "--seed", "3", "-q", "-o", str(out)]).exit_code == 0
    result = runner.invoke(main, ["sensitivity", str(out), "--judgments"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "min_cash" in result.output
    table = pd.read_parquet(out / "judgments.parquet")
    cfg = load_config(config)
    assert len(table) == 2 * len(cfg.judgments)
    assert list(table["rank"]) == sorted(table["rank"])
    same = table[(table["judgment"] == "price_usage_correlation") & (table["side"] == "low")].iloc[0]
    for figure in ("p_shortfall_by_2030", "p_fcf_positive_2030", "funding_gap_q95"):
        assert same[f"{figure}_change"] == 0 and same[f"{figure}_change_se"] == 0
    # An alternative's figure is exactly the figure of a run with that setting, same seed and paths.
    high = table[(table["judgment"] == "min_cash") & (table["side"] == "high")].iloc[0]
    other = run(load_config(config, ["funding.min_cash=15"]), 4000, 3)
    assert high["p_shortfall_by_2030"] == pytest.approx(other.metric("p_shortfall_by_2030").value, abs=1e-12)
    assert high["p_shortfall_by_2030_change_se"] > 0
    # The file is the run's: a new run with --force replaces it.
    assert runner.invoke(main, ["run", str(config), "-n", "100", "-q", "-o", str(out), "--force"]).exit_code == 0
    assert not (out / "judgments.parquet").exists()


def test_a_run_without_judgments_is_one_clear_error(tmp_path, base_raw):
    out = tmp_path / "run"
    run(validate(dict(base_raw, judgments={})), 1000, 1, out)
    result = CliRunner().invoke(main, ["sensitivity", str(out), "--judgments"])
    assert result.exit_code == 1 and "lists no [judgments]" in result.output


def test_the_report_tornado_shows_judgments_beside_parameters(tmp_path):
    from simulator.report import make_report

    out = tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(main, ["run", "-n", "3000", "-q", "-o", str(out)]).exit_code == 0
    assert runner.invoke(main, ["sensitivity", str(out), "--judgments"]).exit_code == 0
    report = make_report(out)
    rows = report.series["tornado"]
    assert set(rows["kind"]) == {"judgment"}  # no sensitivity.parquet yet: judgments alone
    assert runner.invoke(main, ["sensitivity", str(out)]).exit_code == 0
    rows = make_report(out).series["tornado"]
    assert set(rows["kind"]) == {"judgment", "parameter"}
    swings = (rows["high"] - rows["low"]).abs().to_numpy()
    assert list(swings) == sorted(swings, reverse=True)
    # Base's judgments that move it most since the contracts (model v2): idle capacity, resold or paid.
    assert {"resale", "take_or_pay_oracle"} & set(rows["name"])
