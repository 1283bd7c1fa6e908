"""Sources (docs/model.md §7): every source a packaged config cites exists, is dated, and was published by the
config's as-of date; the repository stands alone (no path outside it)."""

import calendar
import datetime as dt
import re
from pathlib import Path

import pytest

from simulator.config import PACKAGED_CONFIGS, load_config

ROOT = Path(__file__).resolve().parent.parent
CITE = re.compile(r"\[src: ([a-z0-9-]+)\]")


def sources() -> dict[str, dt.date]:
    """id -> the last day it could have been published (a month means its last day)."""
    text = (ROOT / "docs" / "model.md").read_text()
    table = text[text.index("<!-- sources:begin -->"):text.index("<!-- sources:end -->")]
    out = {}
    for line in table.splitlines()[3:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        year, month = map(int, cells[2].split("-"))
        out[cells[0]] = dt.date(year, month, calendar.monthrange(year, month)[1])
    return out


CONFIGS = sorted(PACKAGED_CONFIGS.glob("*.toml")) + sorted((PACKAGED_CONFIGS / "checks").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_config_cites_only_sources_published_by_its_as_of_date(path):
    known = sources()
    cited = set(CITE.findall(path.read_text()))
    unknown = sorted(cited - set(known))
    assert not unknown, f"{path.name} cites sources not in docs/model.md §7: {unknown}"
    as_of = load_config(path).simulation.as_of
    assert as_of is not None, f"{path.name}: every packaged config says as of when it is (simulation.as_of)"
    late = sorted(f"{s} ({known[s]:%Y-%m})" for s in cited if known[s] >= as_of)
    assert not late, f"{path.name} is as of {as_of} but cites {late}"


def test_base_is_as_of_the_first_of_march_2026():
    assert load_config(PACKAGED_CONFIGS / "base.toml").simulation.as_of == dt.date(2026, 3, 1)


def test_the_repository_stands_alone():
    """No file of the project points outside it (the team's notes are not shipped)."""
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md"), *CONFIGS,
             *(ROOT / "simulator").glob("*.py")]
    outside = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files
               for m in re.finditer(r"\.\./shared|shared/(?:MODEL|calibration|STYLE)|\bcal: ", p.read_text())]
    assert not outside, "\n".join(outside)
