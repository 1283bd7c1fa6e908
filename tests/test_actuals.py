"""Runs updated on reported figures (``--actuals``): the weights against a closed form, invariance, and files."""

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scipy import stats as scipy_stats

from simulator import kernel
from simulator.actuals import load_actuals
from simulator.api import RunInterrupted, run
from simulator.built_model import Model
from simulator.cli import main
from simulator.config import load_config, validate
from simulator.engine import trace_steps
from simulator.results import ResultsError

from conftest import quiet_world

ACTUALS = "configs/actuals/2026h1.toml"
Q1_2026 = (("2026Q1", "revenue", 5.7), ("2026Q1", "burn", 3.7), ("2026Q1", "gross_margin", 0.39))


def actuals_file(tmp_path, *figures, confidence="M", extra=""):
    """An actuals file of ``figures`` (period, variable, value) from one source."""
    text = f'[sources.s]\ntitle = "a report"\npublished = 2026-06-30\nconfidence = "{confidence}"\n{extra}'
    for period, variable, value in figures:
        text += f'[[figures]]\nperiod = "{period}"\nvariable = "{variable}"\nvalue = {value}\nsource = "s"\n'
    path = tmp_path / "actuals.toml"
    path.write_text(text)
    return path


def conjugate_world(base_raw):
    """One revenue segment whose only uncertainty is its lognormal starting run-rate: every revenue figure of a
    path is that run-rate times a constant, so a lognormal report of one of them has a lognormal posterior."""
    raw = quiet_world(base_raw)
    raw["revenue"] = {"consumer": raw["revenue"]["consumer"]}
    del raw["revenue"]["consumer"]["ceiling"]
    raw["revenue"]["consumer"]["run_rate"] = {"dist": "lognormal", "p5": 12.0, "p95": 15.5}
    raw["shocks"] = {}
    raw["judgments"] = {}
    return raw


def test_weighted_revenue_matches_the_conjugate_posterior(base_raw, tmp_path):
    cfg = validate(conjugate_world(base_raw))
    mu = (math.log(12.0) + math.log(15.5)) / 2
    s = (math.log(15.5) - math.log(12.0)) / (2 * scipy_stats.norm.ppf(0.95))
    # Revenue in Q1 and in 2026 per unit of starting run-rate: constants of the path (no randomness but it).
    steps = trace_steps(Model.of(cfg), 5, seed=1)
    prior = run(cfg, 5, seed=1)
    per_rate = prior.paths["revenue_2026"] / prior.paths["revenue.consumer.run_rate"]
    q1_share = steps[:, 0, kernel.T_REV] / steps[:, :4, kernel.T_REV].sum(axis=1)
    assert np.ptp(per_rate) < 1e-9 * per_rate.mean() and np.ptp(q1_share) < 1e-12
    c2, c1 = per_rate.iloc[0], per_rate.iloc[0] * q1_share[0]
    # A report one prior standard deviation above the median, with an error of the prior's width: the
    # posterior's log run-rate is N(mu + s/2, s^2/2).
    tau = s
    reported = c1 * math.exp(mu + s)
    path = actuals_file(tmp_path, ("2026Q1", "revenue", reported), extra=f"relative_error = {tau}\n")
    post_mu, post_s = mu + s / 2, s / math.sqrt(2)
    result = run(cfg, 40_000, seed=3, actuals=path)
    summary = result.summary.set_index("metric")
    for q in (0.05, 0.25, 0.50, 0.75, 0.95):
        row = summary.loc[f"revenue_2026_q{round(q * 100):02d}"]
        exact = c2 * math.exp(post_mu + post_s * scipy_stats.norm.ppf(q))
        assert abs(row.value - exact) < 4 * row.stderr, (q, row.value, exact, row.stderr)
        assert row.ci_low <= row.value <= row.ci_high
    by_year = result.by_year.set_index(["year", "variable"]).loc[(2026, "revenue")]
    exact_mean = c2 * math.exp(post_mu + post_s ** 2 / 2)
    assert abs(by_year["mean"] - exact_mean) < 4 * by_year["mean_stderr"], (by_year["mean"], exact_mean)
    # The prior is far enough from the posterior that a weighting bug would show: 4 standard errors are less
    # than a tenth of the shift of the median.
    assert 4 * summary.loc["revenue_2026_q50"].stderr < 0.1 * c2 * (math.exp(post_mu) - math.exp(mu))
    # Kish's effective share E[w]^2 / E[w^2] in closed form for a normal prior and likelihood:
    # sqrt(1 + 2 v) / (1 + v) exp(D^2 / (1 + 2 v) - D^2 / (1 + v)), v = s^2 / tau^2, D = (report - mu) / tau.
    v, d = (s / tau) ** 2, s / tau
    share = math.sqrt(1 + 2 * v) / (1 + v) * math.exp(d * d / (1 + 2 * v) - d * d / (1 + v))
    ess = summary.loc["ess"].value
    assert abs(ess / 40_000 - share) < 0.02, (ess / 40_000, share)


def test_weights_follow_the_figures_path_by_path(tmp_path):
    """Each path's weight is the product of its figures' likelihoods, computed here from its own Q1 trace."""
    result = run(load_config(), 3000, seed=5, actuals=actuals_file(tmp_path, *Q1_2026))
    steps = trace_steps(Model.of(load_config()), 3000, seed=5)
    q1 = steps[:, 0]
    revenue, fcf = q1[:, kernel.T_REV] / 4, q1[:, kernel.T_FCF] / 4
    margin = q1[:, kernel.T_GM]
    sd = 0.1 * (revenue - fcf)
    expected = (np.exp(-0.5 * ((math.log(5.7) - np.log(revenue)) / 0.1) ** 2)
                * np.exp(-0.5 * ((-3.7 - fcf) / sd) ** 2) / sd
                * np.exp(-0.5 * ((0.39 - margin) / 0.05) ** 2))
    np.testing.assert_allclose(result.paths["weight"], expected, rtol=1e-9)
    # The probabilities are the weighted shares of the kept rows, with the effective paths' standard error.
    w = result.paths["weight"].to_numpy()
    hits = (result.paths["fcf_2030"] > 0).to_numpy()
    p = result.metric("p_fcf_positive_2030")
    assert p.value == pytest.approx(np.sum(w * hits) / np.sum(w), rel=1e-12)
    ess = np.sum(w) ** 2 / np.sum(w * w)
    assert result.metric("ess").value == pytest.approx(ess, rel=1e-12)
    assert p.stderr == pytest.approx(math.sqrt(p.value * (1 - p.value) / round(ess)), rel=1e-12)


def test_an_empty_actuals_file_gives_the_prior_run_bit_for_bit(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("# no figures reported yet\n")
    runner = CliRunner()
    outs = [tmp_path / "prior", tmp_path / "empty"]
    for out, extra in zip(outs, ([], ["--actuals", str(empty)])):
        result = runner.invoke(main, ["run", "-n", "3000", "--seed", "4", "-q", "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
    files = json.loads((outs[0] / "manifest.json").read_text())["files"]
    assert files == json.loads((outs[1] / "manifest.json").read_text())["files"]
    for name in files:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_posterior_files_do_not_depend_on_threads_chunks_or_kept_rows(tmp_path):
    runner = CliRunner()
    outs = []
    for i, (threads, chunk, keep) in enumerate([(2, 4000, "sample:1500"), (1, 777, "sample:1500"),
                                                 (2, 333, "sample:1500"), (2, 4000, "none")]):
        out = tmp_path / f"run{i}"
        result = runner.invoke(main, ["run", "-n", "5000", "--seed", "8", "-q", "-o", str(out), "--threads",
                                      str(threads), "--chunk-size", str(chunk), "--keep-paths", keep,
                                      "--actuals", ACTUALS])
        assert result.exit_code == 0, result.output
        outs.append(out)
    manifests = [json.loads((o / "manifest.json").read_text()) for o in outs]
    for m in manifests[1:3]:
        assert m["files"] == manifests[0]["files"]
    assert "weight" in pq.read_schema(outs[0] / "paths" / "part-00000.parquet").names
    # Kept rows or not, a posterior run's summaries are the same weighted order statistics.
    tables = [pq.read_table(o / "summary.parquet").to_pandas() for o in (outs[0], outs[3])]
    assert tables[0].equals(tables[1])
    summary = tables[0].set_index("metric")
    assert 0 < summary.loc["ess"].value < 5000


def test_resumed_posterior_run_equals_one_run(tmp_path):
    """Stopped after its first chunk and resumed, a posterior run writes the same files."""
    cfg = load_config()
    whole = run(cfg, 4000, seed=9, out=tmp_path / "whole", chunk_size=1000, actuals=ACTUALS)
    calls = []

    def stop_once():
        calls.append(1)
        return len(calls) == 1

    with pytest.raises(RunInterrupted):
        run(cfg, 4000, seed=9, out=tmp_path / "parts", chunk_size=1000, actuals=ACTUALS, should_stop=stop_once)
    resumed = run(cfg, 4000, seed=9, out=tmp_path / "parts", chunk_size=1000, actuals=ACTUALS, resume=True)
    assert resumed.summary.equals(whole.summary)
    for name in json.loads((tmp_path / "whole" / "manifest.json").read_text())["files"]:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "parts" / name).read_bytes(), name


def test_a_resume_with_other_actuals_is_refused(tmp_path):
    cfg = load_config()
    with pytest.raises(RunInterrupted):
        run(cfg, 4000, seed=9, out=tmp_path / "r", chunk_size=1000, actuals=ACTUALS, should_stop=lambda: True)
    other = actuals_file(tmp_path, ("2026Q1", "revenue", 5.0))
    with pytest.raises(ResultsError, match="actuals_hash"):
        run(cfg, 4000, seed=9, out=tmp_path / "r", chunk_size=1000, actuals=other, resume=True)


def test_target_se_counts_effective_paths(tmp_path):
    """An auto-stopped posterior run stops where its weighted probabilities' standard errors, from the effective
    paths, reach the target, and equals a fixed run of that many paths."""
    cfg = load_config()
    # 65,536 paths reach it unweighted (0.0021^2 > 0.25 / 65,536), not with ~70% of them effective.
    target = 0.0021
    auto = run(cfg, 4 * 65536, seed=2, target_se=target, actuals=ACTUALS, keep_paths="none")
    n = auto.metadata["n_paths"]
    assert n == 2 * 65536
    probabilities = auto.summary[auto.summary.metric.str.startswith("p_")]
    assert probabilities.stderr.max() <= target
    fixed = run(cfg, n, seed=2, actuals=ACTUALS, keep_paths="none")
    assert auto.summary.equals(fixed.summary)


def test_the_2026h1_figures_keep_most_paths_effective(tmp_path):
    """The claim of api.POSTERIOR_PATHS' comment: base given 2026h1 keeps ~70% of its paths effective, ~40% had
    the source been of high confidence (5%)."""
    cfg = load_config()
    medium = run(cfg, 20_000, seed=6, actuals=ACTUALS, keep_paths="none")
    assert 0.6 < medium.metric("ess_share").value < 0.8
    assert [(f.period, f.variable, f.value) for f in load_actuals(ACTUALS).figures] == list(Q1_2026)
    high = run(cfg, 20_000, seed=6, actuals=actuals_file(tmp_path, *Q1_2026, confidence="H"), keep_paths="none")
    assert 0.3 < high.metric("ess_share").value < 0.5


def test_trace_of_the_first_steps_equals_the_full_trace():
    """trace_block recording only the first T steps records what a full trace records for them."""
    model = Model.of(load_config())
    full = trace_steps(model, 500, seed=3)
    n = 500
    theta = np.empty((n, len(model.parameters)))
    annual = np.empty((n, len(kernel.ANNUAL_VARS), len(model.years)))
    scalars = np.empty((n, len(kernel.SCALAR_VARS)))
    first = np.empty((n, 3, len(kernel.STEP_VARS)))
    kernel.trace_block(np.uint64(3), 0, model.inputs, theta, annual, scalars, first)
    np.testing.assert_array_equal(first, full[:, :3])


@pytest.fixture(scope="module")
def prior_and_posterior(tmp_path_factory):
    """Base with every row kept, and the same paths updated on 2026h1: their folders."""
    root = tmp_path_factory.mktemp("posterior")
    runner = CliRunner()
    for name, extra in (("prior", []), ("posterior", ["--actuals", "2026h1"])):
        result = runner.invoke(main, ["run", "-n", "6000", "--seed", "12", "-q", "-o", str(root / name), *extra])
        assert result.exit_code == 0, result.output
    return root / "prior", root / "posterior"


def test_compare_prior_with_posterior_pairs_the_paths(prior_and_posterior):
    """compare PRIOR POSTERIOR: each side's figure is its summary's probability, the difference has a paired
    error (delta method) smaller than the unpaired one, and it is the weighted minus the plain share."""
    from simulator.analysis import compare
    from simulator.results import read_results
    prior, posterior = (read_results(p) for p in prior_and_posterior)
    table = compare(prior, posterior).table.set_index("metric")
    row = table.loc["p_shortfall_by_2030"]
    assert row.a == pytest.approx(prior.metric("p_shortfall_by_2030").value, rel=1e-12)
    assert row.b == pytest.approx(posterior.metric("p_shortfall_by_2030").value, rel=1e-12)
    assert 0 < row.se_paired < row.se_unpaired
    w = posterior.paths["weight"].to_numpy()
    hits = posterior.paths["first_shortfall"].notna().to_numpy()
    # Influence of path i on the weighted share minus that on the plain share, summed in quadrature.
    infl = len(w) * w / w.sum() * (hits - row.b) - (hits - row.a)
    assert row.se_paired == pytest.approx(math.sqrt(np.sum(infl ** 2)) / len(w), rel=1e-9)


def test_compare_refuses_runs_updated_on_different_figures(prior_and_posterior, tmp_path):
    other = actuals_file(tmp_path, ("2026Q1", "revenue", 5.5))
    out = tmp_path / "other"
    assert CliRunner().invoke(main, ["run", "-n", "6000", "--seed", "12", "-q", "-o", str(out), "--actuals",
                                     str(other)]).exit_code == 0
    result = CliRunner().invoke(main, ["compare", str(prior_and_posterior[1]), str(out)])
    assert result.exit_code == 1
    assert "compare runs updated on the same figures, or a run with its prior" in result.output


def test_sensitivity_and_discover_of_a_posterior_use_its_effective_paths(prior_and_posterior):
    from simulator.analysis import discover, sensitivity
    from simulator.results import read_results, weighted_resample
    posterior = read_results(prior_and_posterior[1])
    ess = posterior.metric("ess").value
    result = sensitivity(posterior)
    assert result.n_used == round(ess)
    sample = weighted_resample(posterior.paths, posterior.metadata["seed"])
    assert "weight" not in sample.columns and sample["path_id"].is_monotonic_increasing
    # The resample's shares are the weighted shares, to within the resampling's error (systematic resampling
    # errs less than a multinomial draw of as many paths).
    w = posterior.paths["weight"].to_numpy()
    hits = posterior.paths["first_shortfall"].notna().to_numpy()
    p = np.sum(w * hits) / np.sum(w)
    assert abs(sample["first_shortfall"].notna().mean() - p) < 4 * math.sqrt(p * (1 - p) / len(sample))
    assert discover(posterior, "shortfall").n_paths == 6000


def test_replay_of_a_posterior_path_gives_its_weight_and_figures(prior_and_posterior):
    """replay recomputes a path's weight from the plain-Python reference's steps: it matches the stored row's,
    and each reported figure is shown beside the path's own."""
    posterior = prior_and_posterior[1]
    result = CliRunner().invoke(main, ["replay", str(posterior), "--path", "17"])
    assert result.exit_code == 0, result.output
    assert "matches the run's stored row" in result.output
    from simulator.replay import replay
    from simulator.results import read_paths
    r = replay(posterior, 17)
    stored = read_paths(posterior).set_index("path_id").loc[17]
    assert r.weight == pytest.approx(stored["weight"], rel=1e-9)
    assert list(r.figures["variable"]) == ["revenue", "burn", "gross_margin"]
    assert r.figures.loc[0, "path"] == pytest.approx(r.trace["revenue"].iloc[0], rel=1e-12)
    assert f"weight {r.weight:.6g}" in result.output


def test_report_of_a_posterior_shows_the_update(tmp_path):
    """The report of a run with actuals says what it was updated on (escaped), gives the prior beside each
    headline figure, and draws the reported figures against the model's before and after."""
    hostile = actuals_file(tmp_path, ("2026Q1", "revenue", 5.7)).read_text().replace(
        "[sources.s]", '[sources."<img src=x onerror=alert(1)>"]').replace('source = "s"',
                                                                         'source = "<img src=x onerror=alert(1)>"')
    path = tmp_path / "hostile.toml"
    path.write_text(hostile)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "-n", "3000", "--seed", "2", "-q", "-o", str(out), "--actuals",
                                       str(path), "--report"])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Verdict, given the reported figures" in page and "of the weighted paths" in page
    assert "<th>prior</th>" in page and "Updated on reported figures" in page
    assert (out / "reported.png").exists()
