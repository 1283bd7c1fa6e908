"""Antithetic variates: smaller variance on a monotone model, and standard errors that account
for the pairing (they match the spread of estimates over repeated seeds)."""

import numpy as np
import pytest
from click.testing import CliRunner

from simulator.api import run
from simulator.cli import main
from simulator.config import validate

METRICS = ("revenue_2030_q50", "p_fcf_positive_2030", "cfar95_2030_vs_expected", "funding_gap_es95")


def summary(raw, antithetic, n, seed):
    raw["simulation"]["antithetic"] = antithetic
    return run(validate(raw), n, seed=seed).summary.set_index("metric")


def test_antithetic_reduces_the_standard_error_of_a_monotone_figure(base_raw):
    """Revenue rises with every growth draw and shock: mirrored pairs cancel much of its noise."""
    plain = summary(base_raw, False, 40_000, 1)
    anti = summary(base_raw, True, 40_000, 1)
    for m in ("revenue_2030_q50", "revenue_2026_q50"):
        assert anti.loc[m, "stderr"] < 0.7 * plain.loc[m, "stderr"], m
        assert abs(anti.loc[m, "value"] - plain.loc[m, "value"]) < 4 * plain.loc[m, "stderr"], m


@pytest.mark.slow
def test_paired_standard_errors_match_the_spread_over_seeds(base_raw):
    """40 seeds x 4,000 paths: the sd of each estimate over seeds / the mean reported stderr must lie in
    [0.7, 1.4] (the sd of 40 draws is itself uncertain by ~11%; 3 sigma either side)."""
    runs = [summary(base_raw, True, 4000, seed) for seed in range(40)]
    for m in METRICS:
        values = np.array([r.loc[m, "value"] for r in runs])
        stderr = np.mean([r.loc[m, "stderr"] for r in runs])
        assert 0.7 < values.std(ddof=1) / stderr < 1.4, (m, values.std(ddof=1), stderr)


def test_antithetic_needs_even_paths_and_every_row(tmp_path):
    runner = CliRunner()
    odd = runner.invoke(main, ["run", "--antithetic", "-n", "1001", "-q", "--out", str(tmp_path / "a")])
    assert odd.exit_code == 1 and "even number of paths" in odd.output
    streamed = runner.invoke(main, ["run", "--antithetic", "-n", "1000", "--keep-paths", "none", "-q",
                                    "--out", str(tmp_path / "b")])
    assert streamed.exit_code == 1 and "keeps every path's row" in streamed.output
    ok = runner.invoke(main, ["run", "--antithetic", "-n", "1000", "-q", "--out", str(tmp_path / "c")])
    assert ok.exit_code == 0 and "antithetic" in (tmp_path / "c" / "config.json").read_text()
