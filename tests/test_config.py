"""Config loading: the packaged configs, extends, --set, distributions, and every bad input."""

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from simulator.cli import main
from simulator.config import PACKAGED_CONFIGS, ConfigError, load_config, validate

BASE = PACKAGED_CONFIGS / "base.toml"


@pytest.mark.parametrize("path", sorted(PACKAGED_CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_packaged_config_validates(path):
    cfg = load_config(path)
    assert cfg.name == path.stem


def test_top_level_configs_folder_is_the_packaged_one():
    top = Path(__file__).parent.parent / "configs"
    assert sorted(p.name for p in top.glob("*.toml")) == sorted(p.name for p in PACKAGED_CONFIGS.glob("*.toml"))


def write(tmp_path, text, name="scenario.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_extends_overrides_only_what_differs(tmp_path):
    path = write(tmp_path, f'extends = "{BASE}"\nname = "tight"\n[funding]\nmin_cash = 15\n'
                           '[revenue.consumer]\nsigma = 0.3\n')
    cfg, base = load_config(path), load_config()
    assert cfg.funding.min_cash.value == 15 and cfg.revenue["consumer"].sigma.value == 0.3
    assert cfg.revenue["consumer"].run_rate == base.revenue["consumer"].run_rate
    assert cfg.funding.scheduled == base.funding.scheduled


def test_extends_and_the_config_argument_may_name_a_packaged_config_from_any_folder(tmp_path, monkeypatch):
    """``extends = "base"`` (no suffix, no folder) is the packaged base.toml where the folder has no file of that
    name; a file of that name wins; the command line takes a packaged config's name the same way."""
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, 'extends = "bear"\nname = "darker"\n[funding]\nmin_cash = 15\n')
    cfg, bear = load_config(path), load_config(PACKAGED_CONFIGS / "bear.toml")
    assert cfg.funding.min_cash.value == 15 and cfg.revenue == bear.revenue  # bear extends base.toml in its folder
    assert load_config("bear").digest() == bear.digest()
    result = CliRunner().invoke(main, ["validate", "bear"])
    assert result.exit_code == 0 and "valid (bear," in result.output, result.output
    # A local file of the name is read instead, and the packaged name never reaches a path with a folder or suffix.
    write(tmp_path, 'extends = "base.toml"\nname = "local"\n', "bear")
    write(tmp_path, f'extends = "{BASE}"\nname = "local"\n', "base.toml")
    local = load_config(path)
    assert local.revenue == load_config().revenue != bear.revenue and local.funding.min_cash.value == 15
    for missing in ("bear.toml", "sub/bear", "nosuchconfig"):
        assert missing in error_of(write(tmp_path, f'extends = "{missing}"\n', "m.toml"))


def test_set_means_what_model_md_says():
    cfg = load_config(overrides=["funding.min_cash=15", "revenue.consumer.sigma=0.3",
                                 "compute.price_drift.p5=-0.5", "simulation.steps_per_year=12"])
    assert cfg.funding.min_cash.value == 15
    assert cfg.revenue["consumer"].sigma.value == 0.3
    assert cfg.compute.price_drift.p5 == -0.5
    assert cfg.simulation.steps_per_year == 12


def test_a_run_config_json_reloads_to_the_same_config(tmp_path):
    cfg = load_config()
    import json
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.resolved()))
    assert load_config(path).digest() == cfg.digest()


@pytest.mark.parametrize("dist, scipy_dist", [
    ({"dist": "normal", "mean": 1.0, "sd": 2.0}, sps.norm(1, 2)),
    ({"dist": "normal", "p5": -1.0, "p95": 3.0}, sps.norm(1, 4 / (2 * 1.6448536269514722))),
    ({"dist": "lognormal", "mu": 0.5, "sigma": 0.4}, sps.lognorm(0.4, scale=math.exp(0.5))),
    ({"dist": "lognormal", "p5": 2.0, "p95": 8.0}, sps.lognorm(math.log(4) / (2 * 1.6448536269514722), scale=4.0)),
    ({"dist": "uniform", "low": 1.0, "high": 3.0}, sps.uniform(1, 2)),
    ({"dist": "triangular", "low": 0.0, "mode": 1.0, "high": 4.0}, sps.triang(0.25, 0, 4)),
    ({"dist": "pert", "low": 0.0, "mode": 1.0, "high": 4.0}, sps.beta(2, 4, 0, 4)),
    ({"dist": "beta", "a": 0.7, "b": 2.5}, sps.beta(0.7, 2.5)),
    ({"dist": "normal", "mean": 0.0, "sd": 1.0, "lower": -0.5, "upper": 2.0}, sps.truncnorm(-0.5, 2.0)),
])
def test_distribution_quantiles_match_scipy(base_raw, dist, scipy_dist):
    base_raw["training"]["revenue_elasticity"] = dist  # a parameter with no range restriction
    d = validate(base_raw).training.revenue_elasticity
    for q in (0.001, 0.05, 0.3, 0.5, 0.9, 0.999):
        assert d.quantile(q) == pytest.approx(scipy_dist.ppf(q), rel=1e-4, abs=1e-4), q
    assert np.all(np.diff(d.table()) >= 0)


def test_a_distributions_table_is_computed_once_and_shared_read_only(base_raw):
    """Validating a config (and each judgment's alternatives) finds the table of a distribution it has seen: the
    same values as computed afresh, read-only; distributions that differ in any field, even -0.0 against 0.0,
    have tables of their own."""
    from simulator import distributions

    base_raw["training"]["revenue_elasticity"] = {"dist": "pert", "low": 0.0, "mode": 1.0, "high": 4.0}
    d = validate(base_raw).training.revenue_elasticity
    again = validate(base_raw).training.revenue_elasticity
    assert again.table() is d.table() and not d.table().flags.writeable
    assert np.array_equal(d.table(), d._table())
    assert distributions._table_range(d) == (True, d.table().min(), d.table().max())
    zero, minus_zero = distributions.Fixed(value=0.0), distributions.Fixed(value=-0.0)
    assert math.copysign(1, minus_zero.table()[0]) == -1 and math.copysign(1, zero.table()[0]) == 1


def error_of(raw_or_path, overrides=()):
    with pytest.raises(ConfigError) as info:
        if isinstance(raw_or_path, dict):
            validate(raw_or_path)
        else:
            load_config(raw_or_path, overrides)
    return str(info.value)


def test_negative_volatility_names_the_key(base_raw):
    base_raw["revenue"]["consumer"]["sigma"] = -0.1
    msg = error_of(base_raw)
    assert "revenue.consumer.sigma" in msg and "-0.1" in msg and "[0, inf]" in msg


def test_p5_above_p95_names_the_key(base_raw):
    base_raw["compute"]["price_drift"] = {"dist": "normal", "p5": 0.1, "p95": -0.1}
    msg = error_of(base_raw)
    assert "compute.price_drift" in msg and "p5 (0.1) must be below p95 (-0.1)" in msg


def test_unknown_key_is_an_error(base_raw):
    base_raw["funding"]["min_cahs"] = 15
    msg = error_of(base_raw)
    assert "funding.min_cahs: unknown key" in msg and "min_cash" in msg


def test_unknown_distribution_setting_is_an_error(base_raw):
    base_raw["compute"]["price_drift"] = {"dist": "normal", "mean": 0.0, "sd": 1.0, "sigma": 2.0}
    assert "compute.price_drift.sigma: unknown key" in error_of(base_raw)


def test_unknown_distribution_kind_is_an_error(base_raw):
    base_raw["compute"]["price_drift"] = {"dist": "gamma", "k": 2}
    msg = error_of(base_raw)
    assert "compute.price_drift" in msg and "pert" in msg


def test_normal_on_a_positive_parameter_needs_truncation(base_raw):
    base_raw["revenue"]["consumer"]["half_life"] = {"dist": "normal", "mean": 2.0, "sd": 1.0}
    msg = error_of(base_raw)
    assert "revenue.consumer.half_life" in msg and "truncation" in msg
    base_raw["revenue"]["consumer"]["half_life"] = {"dist": "normal", "mean": 2.0, "sd": 1.0, "lower": 0.1}
    validate(base_raw)


def test_schedule_with_a_missing_year(base_raw):
    del base_raw["training"]["plan"]["2028"]
    msg = error_of(base_raw)
    assert "training.plan" in msg and "missing 2028" in msg


def test_nan_value_is_rejected(base_raw):
    base_raw["costs"]["cash_interest"] = float("nan")
    assert "costs.cash_interest" in error_of(base_raw)


def test_correlation_not_positive_definite_names_entries(base_raw):
    base_raw["shocks"] = {"names": ["revenue.consumer", "revenue.enterprise", "market"],
                          "matrix": [[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]}
    msg = error_of(base_raw)
    assert "shocks" in msg and "not positive definite" in msg and "revenue." in msg


def test_correlation_not_symmetric_or_wrong_size(base_raw):
    base_raw["shocks"] = {"names": ["revenue.consumer", "market"], "matrix": [[1, 0.2], [0.3, 1]]}
    assert "not symmetric" in error_of(base_raw)
    base_raw["shocks"] = {"names": ["revenue.consumer", "market"], "matrix": [[1, 0.2, 0], [0.2, 1, 0]]}
    assert "must be 2x2" in error_of(base_raw)


def test_correlation_of_an_unknown_name(base_raw):
    base_raw["parameter_correlation"]["names"][0] = "compute.price_drfit"
    assert "compute.price_drfit" in error_of(base_raw)


def test_extends_missing_file_and_cycle(tmp_path):
    missing = write(tmp_path, 'extends = "nowhere.toml"\n')
    assert "nowhere.toml" in error_of(missing)
    write(tmp_path, 'extends = "b.toml"\n', "a.toml")
    b = write(tmp_path, 'extends = "a.toml"\n', "b.toml")
    assert "cycle" in error_of(b)


@pytest.mark.parametrize("override, expected", [
    ("funding.min_cahs=15", "no such key"),
    ("funding.min_cash=lots", "funding.min_cash"),
    ("nosuchsection.x=1", "nosuchsection"),
    ("min_cash", "KEY=VALUE"),
])
def test_bad_overrides(override, expected):
    assert expected in error_of(BASE, [override])


@pytest.mark.parametrize("args, expected", [
    (["validate", "{bad}"], "revenue.consumer.sigma"),
    (["run", "{bad}", "-n", "10"], "revenue.consumer.sigma"),
    (["validate", "{unknown}"], "funding.min_cahs: unknown key"),
    (["validate", "{p5}"], "p5 (0.2) must be below p95 (0.1)"),
    (["run", "--set", "funding.nope=1", "-n", "10"], "funding.nope"),
    (["validate", "{missing}"], "config file not found"),
])
def test_cli_config_errors_exit_1_with_one_line_and_no_traceback(tmp_path, args, expected):
    files = {
        "bad": write(tmp_path, f'extends = "{BASE}"\n[revenue.consumer]\nsigma = -0.2\n', "bad.toml"),
        "unknown": write(tmp_path, f'extends = "{BASE}"\n[funding]\nmin_cahs = 15\n', "unknown.toml"),
        "p5": write(tmp_path, f'extends = "{BASE}"\n[compute]\n'
                              + 'price_drift = { dist = "normal", p5 = 0.2, p95 = 0.1 }\n', "p5.toml"),
        "missing": tmp_path / "missing.toml",
    }
    args = [a.format(**files) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_order_of_named_tables_does_not_matter(base_raw):
    """Segments and raises are simulated in name order: a reordered file is the same model."""
    from simulator.engine import simulate

    a = validate(base_raw)
    base_raw["revenue"] = dict(reversed(list(base_raw["revenue"].items())))
    base_raw["funding"]["scheduled"] = dict(reversed(list(base_raw["funding"]["scheduled"].items())))
    b = validate(base_raw)
    assert list(a.revenue) == list(b.revenue) == sorted(a.revenue) and a.digest() == b.digest()
    assert np.array_equal(simulate(a, 200, seed=1).annual, simulate(b, 200, seed=1).annual)


def test_fixing_a_correlated_parameter_drops_its_correlation():
    cfg = load_config(overrides=["compute.price_drift=-0.3"])
    assert cfg.compute.price_drift.value == -0.3
    from simulator.model import build_inputs
    assert build_inputs(cfg).chol_param.shape[0] == len([d for d in cfg.parameters().values() if d.dist != "fixed"])


def test_config_files_that_are_not_small_regular_utf8_files_are_refused(tmp_path):
    """A FIFO would block the read, a chain of 1,200 files once hit RecursionError, Latin-1 text gave a
    decoder's traceback: each is one line that names the file."""
    import os

    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="fifo.toml: not a regular file"):
        load_config(fifo)
    for i in range(1200):
        (tmp_path / f"c{i}.toml").write_text(f'extends = "c{i + 1}.toml"\n' if i < 1199 else 'name = "x"\n')
    with pytest.raises(ConfigError, match="c0.toml: extends chain deeper than 32 files"):
        load_config(tmp_path / "c0.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes('name = "café"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin.toml: not UTF-8 text \(byte 11 is 0xe9\)"):
        load_config(latin)
