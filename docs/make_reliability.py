"""Write the table of bad inputs and their messages into docs/reliability.md.

    python docs/make_reliability.py

Runs every case of tests/bad_inputs.py (the list the tests use) and replaces the text between
the table markers in docs/reliability.md with what each case printed.
"""

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bad_inputs import CASES, run_case  # noqa: E402

BEGIN, END = "<!-- bad-inputs:begin -->", "<!-- bad-inputs:end -->"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def table() -> str:
    rows = ["| # | bad input | config lines or command | exit | message |", "| --- | --- | --- | --- | --- |"]
    for i, case in enumerate(CASES, 1):
        with tempfile.TemporaryDirectory() as tmp:
            result = run_case(case, Path(tmp))
            names = r"scenario\.toml|out|existing|empty|foreign|big\.toml|nowhere\.toml|missing\.toml|actuals\.toml"
            message = re.sub(rf"/\S*/({names})", r"\1", result.output)
        given = " ".join(case.args).replace("{config}", "scenario.toml").replace("{out}", "out")
        given = given.replace("{existing}", "existing").replace("{missing}", "missing.toml")
        given = given.replace("{out_empty}", "empty")
        given = given.replace("{foreign}", "foreign").replace("{actuals}", "actuals.toml")
        source = f"`{cell(case.toml)}` in scenario.toml; " if case.toml else ""
        rows.append(f"| {i} | {case.what} | {source}`simulator {cell(given)}` | {result.exit_code} | "
                    f"`{cell(message)}` |")
    return "\n".join(rows)


def main():
    doc = ROOT / "docs" / "reliability.md"
    text = doc.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    doc.write_text(text[:start] + "\n" + table() + "\n" + text[end:])


if __name__ == "__main__":
    main()
