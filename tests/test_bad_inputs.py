"""Each bad input of tests/bad_inputs.py exits 1 with one line that names the key, without a traceback."""

import pytest

from bad_inputs import CASES, run_case


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_bad_input_gets_one_clear_line(case, tmp_path, monkeypatch):
    """... and leaves nothing behind (issue 33): no output folder, no results/ where the run was started, so the
    corrected command is not refused for a folder the rejected one made."""
    if case.requires:
        pytest.importorskip(case.requires)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # the cases without --out would write results/<name>/ here
    result = run_case(case, tmp_path)
    assert result.exit_code == 1, result.output
    assert case.expect in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()
    assert list(cwd.iterdir()) == []
