"""The benchmark tools that read the kernel's source still find their way in it (they are run by hand, not by
the tests, so a change to the kernel could break them unseen)."""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def benchmarks_path():
    """benchmarks/ on sys.path for the tests of this module (its scripts import each other by name)."""
    sys.path.insert(0, str(BENCHMARKS))
    yield
    sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def breakdown(benchmarks_path):
    import breakdown
    return breakdown


def test_breakdown_finds_every_phase_of_the_kernel(breakdown):
    source = Path(breakdown.kernel.__file__).read_text()
    probed = breakdown.probed_source(source)  # exits naming the phase whose anchor is gone
    assert probed.count("_phase, _last = _probe(cycles, _phase, ") == len(breakdown.PHASES)
    compile(probed, "probed_kernel.py", "exec")  # still Python


def test_breakdown_names_a_lost_anchor(breakdown):
    source = Path(breakdown.kernel.__file__).read_text().replace("    draw_scheduled_raises(", "    draw_raises(")
    with pytest.raises(SystemExit, match="scheduled raises"):
        breakdown.probed_source(source)


def test_machine_line_tells_the_two_epyc_vms_apart(benchmarks_path):
    from run_benchmarks import cpu_description

    zen3 = "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fma avx avx2 bmi2\n"
    zen4 = zen3.replace("model\t\t: 1", "model\t\t: 17").replace("avx2", "avx2 avx512f avx512dq")
    assert cpu_description(zen3).startswith("AMD EPYC, family 25 model 1, AVX2")
    assert cpu_description(zen4).startswith("AMD EPYC, family 25 model 17, AVX-512")


def test_short_run_limit_bounds_the_run_by_its_parts(benchmarks_path):
    """The bound is the paths over the kernel's, binning's and the pilot's seconds, shown only on a miss."""
    from run_benchmarks import short_run_limit

    res = {"n_kernel": 1_000_000, "pilot_seconds": 0.25, "binning_per_path": 100e-9}
    missed = {"kernel": 1_250_000.0, "engine": 700_000.0}
    assert short_run_limit(res, missed) == (" (at most 869,565: the kernel's 0.80 s, binning's 0.10 s and the "
                                            "pilot's 0.25 s)")  # 10^6 / 1.15 s
    assert short_run_limit(res, {**missed, "engine": 1_000_000.0}) == ""
