"""The benchmark tools that read the kernel's source still find their way in it (they are run by hand, not by
the tests, so a change to the kernel could break them unseen)."""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def breakdown():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import breakdown
        yield breakdown
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_breakdown_finds_every_phase_of_the_kernel(breakdown):
    source = Path(breakdown.kernel.__file__).read_text()
    probed = breakdown.probed_source(source)  # exits naming the phase whose anchor is gone
    assert probed.count("_phase, _last = _probe(cycles, _phase, ") == len(breakdown.PHASES)
    compile(probed, "probed_kernel.py", "exec")  # still Python


def test_breakdown_names_a_lost_anchor(breakdown):
    source = Path(breakdown.kernel.__file__).read_text().replace("    # 2. Scheduled raises:", "    # 2. Raises:")
    with pytest.raises(SystemExit, match="scheduled raises"):
        breakdown.probed_source(source)
