"""Each bad input of tests/bad_inputs.py exits 1 with one line that names the key, without a traceback."""

import pytest

from bad_inputs import CASES, run_case


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_bad_input_gets_one_clear_line(case, tmp_path):
    if case.requires:
        pytest.importorskip(case.requires)
    result = run_case(case, tmp_path)
    assert result.exit_code == 1, result.output
    assert case.expect in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out" / "manifest.json").exists()
