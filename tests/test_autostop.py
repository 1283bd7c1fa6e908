"""Auto-stop on precision: --target-se stops at a multiple of 65,536 paths once every probability's
standard error is small enough, and the result equals a fixed-count run of that many paths."""

import pandas as pd
from click.testing import CliRunner

from simulator.api import largest_se, run
from simulator.cli import main
from simulator.config import load_config
from simulator.engine import CHECK_EVERY


def test_stops_once_precise_enough_and_equals_a_fixed_run():
    cfg = load_config()
    auto = run(cfg, 4 * CHECK_EVERY, seed=12, target_se=0.0015, keep_paths="all")
    n = auto.metadata["n_paths"]
    assert n % CHECK_EVERY == 0 and n < 4 * CHECK_EVERY
    assert auto.metadata["precision"]["largest_probability_se"] <= 0.0015
    # One checkpoint earlier was not precise enough (the largest SE shrinks like 1/sqrt(n)).
    earlier = run(cfg, n - CHECK_EVERY, seed=12, keep_paths="all")
    assert largest_se({m: round(v * (n - CHECK_EVERY)) for m, v in
                       earlier.summary.set_index("metric")["value"].items() if m.startswith("p_")},
                      n - CHECK_EVERY) > 0.0015
    fixed = run(cfg, n, seed=12, keep_paths="all")
    pd.testing.assert_frame_equal(auto.summary, fixed.summary, check_exact=True)
    pd.testing.assert_frame_equal(auto.paths, fixed.paths, check_exact=True)


def test_stop_point_does_not_depend_on_chunks_and_streams_like_a_fixed_run():
    cfg = load_config()
    a = run(cfg, 6 * CHECK_EVERY, seed=4, target_se=0.001, keep_paths="sample:1000", chunk_size=10_000, threads=1)
    b = run(cfg, 6 * CHECK_EVERY, seed=4, target_se=0.001, keep_paths="sample:1000")
    n = a.metadata["n_paths"]
    assert n == b.metadata["n_paths"] and n >= 2 * CHECK_EVERY  # past the histograms' pilot
    fixed = run(cfg, n, seed=4, keep_paths="sample:1000")
    for other in (b, fixed):
        pd.testing.assert_frame_equal(a.summary, other.summary, check_exact=True)
        pd.testing.assert_frame_equal(a.by_year, other.by_year, check_exact=True)


def test_cli_reports_when_the_target_is_not_reached(tmp_path):
    result = CliRunner().invoke(main, ["run", "--target-se", "0.0001", "--max-paths", "20000", "-q",
                                       "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert "target standard error 0.0001 NOT reached with 20,000 paths" in result.output
    # With the default --max-paths (10^7) the run samples its rows and streams its quantiles, so its
    # first possible stop is past the histograms' pilot of 524,288 paths.
    result = CliRunner().invoke(main, ["run", "--target-se", "0.004", "-q", "--out", str(tmp_path / "y")])
    assert "target standard error 0.004 reached with 524,288 paths" in result.output
