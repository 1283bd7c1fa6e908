"""Every fenced code block of README.md runs, in order, in a fresh folder (issue 33): the README cannot go stale.

How each block is run, by its fence and the HTML comment on the line before it:

- ``<!-- not run: REASON -->`` before a block: not run, and reported as skipped with REASON (the set-up
  blocks: they make a virtual environment and install). Nothing else is skipped silently: a block the test
  does not know how to run fails it.
- shell (````bash``, ````console``, ````sh``, or a bare fence whose first line starts with ``$ ``): each
  ``$ COMMAND`` line runs with bash in the folder, ``simulator`` being this checkout's (``python -m
  simulator``); the lines after it, up to the next ``$ ``, are its output as shown. A shown ``Error:`` line:
  the command must exit 1 (2 where a ``Usage:`` line is shown); else 0. Every shown line must match a line of
  the output (stdout and stderr as a terminal shows them), in order: with ``<!-- output: exact -->`` before the
  block exactly, numbers included; else in structure, every number standing for any number (the metric names,
  labels and words must be there). In both, ``...`` stands for any text and a time in seconds for any time.
  A block of commands without ``$ `` runs as one script and must exit 0.
- python: run in order, in one namespace for the whole README, in the same folder (so a block that reads
  ``results/base`` reads what the first ``simulator run`` wrote). A block that imports duckdb is skipped only
  where duckdb is not installed (it is not a dependency), and says so.
- sql: run with duckdb where it is installed, else skipped likewise.

Each block is one test, named by its line; running one alone runs the blocks before it first. Also: every
relative link of README.md and docs/*.md names a file of this repository (and a heading of it, for #anchors).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import simulator

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The code under test: the package this test imports (a worktree's, not another install's).
PACKAGE_ROOT = Path(simulator.__file__).resolve().parent.parent
SHELL = {"bash", "sh", "console", "shell"}
HAS_DUCKDB = importlib.util.find_spec("duckdb") is not None
COMMAND_TIMEOUT = 300  # seconds: a first run compiles the kernel


@dataclass
class Block:
    line: int       # of the opening fence, 1-based
    lang: str
    text: str
    marks: list[str]  # the HTML comments right before the fence

    def mark(self, name: str) -> str | None:
        for m in self.marks:
            if m.startswith(name):
                return m[len(name):].strip(" :")
        return None


def blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        marks, j = [], i - 1
        while j >= 0 and re.fullmatch(r"<!--.*-->", lines[j].strip()):
            marks.insert(0, lines[j].strip()[4:-3].strip())
            j -= 1
        end = next(k for k in range(i + 1, len(lines)) if lines[k].startswith("```"))
        found.append(Block(i + 1, fence.group(1), "\n".join(lines[i + 1:end]), marks))
        i = end + 1
    return found


def kind(block: Block) -> str:
    if block.lang in SHELL or (block.lang == "" and block.text.lstrip().startswith("$ ")):
        return "shell"
    return block.lang


# --- shown output against the output -------------------------------------------------------------------------

NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:e[-+]?\d+)?%?(?![\w])")
SECONDS = re.compile(r"\b\d+(?:\.\d+)? s\b")


def pattern(shown: str, exact: bool) -> re.Pattern:
    """A shown line as a regex over an output line: whitespace runs match any whitespace, ``...`` any text,
    a time in seconds any time, and (unless ``exact``) every number any number."""
    shown = SECONDS.sub("\0S", " ".join(shown.split()))
    if not exact:
        shown = NUMBER.sub("\0N", shown)
    out = re.escape(shown).replace(r"\.\.\.", ".*").replace(r"\ ", r"\s+")
    out = out.replace("\0S", r"\d+(?:\.\d+)?\ s").replace("\0N", NUMBER.pattern)
    return re.compile(out)


def check_output(command: str, shown: list[str], output: str, exact: bool) -> None:
    got = [" ".join(line.split()) for line in output.splitlines() if line.strip()]
    at = 0
    for line in (s for s in shown if s.strip()):
        p = pattern(line, exact)
        while at < len(got) and not p.fullmatch(got[at]):
            at += 1
        assert at < len(got), (f"`$ {command}`: the README shows\n    {line}\nbut the command's output has no such "
                               f"line ({'exactly' if exact else 'in structure'}, in this order):\n{output}")
        at += 1


def commands(text: str) -> list[tuple[str, list[str]]]:
    """``$ `` lines with the lines shown after each."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"output before the first `$ ` line: {line!r}")
    return steps


# --- the walk through the README -----------------------------------------------------------------------------

class Walk:
    """The README's blocks run in order, in one folder and one Python namespace."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.namespace: dict = {"__name__": "__readme__"}
        self.done: dict[int, str | None] = {}  # block index -> None (passed or skipped) or what failed
        shims = folder.parent / "bin"
        shims.mkdir()
        shim = shims / "simulator"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m simulator "$@"\n')
        shim.chmod(0o755)
        self.env = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])),
                    "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}

    def run_through(self, index: int, all_blocks: list[Block]) -> None:
        """Run the blocks before ``index`` not run yet; fail if one of them failed."""
        for i in range(index):
            if i not in self.done:
                try:
                    self.run(all_blocks[i])
                    self.done[i] = None
                except pytest.skip.Exception:
                    self.done[i] = None
                except BaseException as e:  # recorded, and reported by the block's own test
                    self.done[i] = f"{type(e).__name__}: {e}"
            if self.done[i] is not None:
                pytest.fail(f"README.md:{all_blocks[i].line}, a block this one needs, failed:\n{self.done[i]}")

    def run(self, block: Block) -> None:
        reason = block.mark("not run")
        if reason is not None:
            assert reason, f"README.md:{block.line}: `<!-- not run: REASON -->` needs a reason"
            pytest.skip(f"README.md:{block.line}: not run ({reason})")
        what = kind(block)
        if what == "shell":
            self.shell(block)
        elif what == "python":
            if re.search(r"^\s*(import|from)\s+.*\bduckdb\b", block.text, re.M) and not HAS_DUCKDB:
                pytest.skip(f"README.md:{block.line}: needs duckdb, which is not installed (not a dependency)")
            with contextlib.chdir(self.folder):
                exec(compile(block.text, f"README.md:{block.line}", "exec"), self.namespace)
        elif what == "sql":
            if not HAS_DUCKDB:
                pytest.skip(f"README.md:{block.line}: SQL runs with duckdb, which is not installed (not a dependency)")
            import duckdb

            with contextlib.chdir(self.folder):
                duckdb.sql(block.text).fetchall()
        else:
            pytest.fail(f"README.md:{block.line}: a ```{block.lang} block the test cannot run; "
                        "mark it <!-- not run: why --> if it is not meant to run")

    def shell(self, block: Block) -> None:
        exact = block.mark("output") == "exact"
        if not block.text.lstrip().startswith("$ "):
            steps = [(block.text, [])]
        else:
            steps = commands(block.text)
        for command, shown in steps:
            done = subprocess.run(["bash", "-c", command], cwd=self.folder, env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=COMMAND_TIMEOUT)
            errors = [s for s in shown if s.startswith("Error:")]
            want = (2 if any(s.startswith("Usage:") for s in shown) else 1) if errors else 0
            assert done.returncode == want, (f"README.md:{block.line}: `$ {command}` exited {done.returncode}, "
                                             f"the README implies {want}:\n{done.stdout}")
            check_output(command, shown, done.stdout, exact)


ALL = blocks(README)


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme") / "work"
    folder.mkdir()
    return Walk(folder)


@pytest.mark.parametrize("index", range(len(ALL)), ids=[f"line{b.line}-{kind(b) or 'bare'}" for b in ALL])
def test_readme_block_runs(walk, index):
    walk.run_through(index, ALL)
    try:
        walk.run(ALL[index])
    except pytest.skip.Exception:
        walk.done[index] = None
        raise
    except BaseException as e:
        walk.done[index] = f"{type(e).__name__}: {e}"
        raise
    walk.done[index] = None


def test_the_readme_has_its_blocks_and_stays_short():
    """The two set-up commands near the top, not run here (they install), and at most 200 lines."""
    assert len(README.read_text().splitlines()) <= 200
    setup = [b for b in ALL if b.mark("not run") is not None]
    assert [b.mark("not run") for b in setup] == ["installs", "installs"]
    assert all(b.line < 30 and "pip install" in b.text for b in setup)
    assert kind(ALL[2]) == "shell" and ALL[2].text.startswith("$ simulator run\n")


# --- links ---------------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    out = set()
    for line in path.read_text().splitlines():
        heading = re.match(r"^#{1,6}\s+(.*)$", line)
        if heading:
            text = heading.group(1).strip().lower()
            out.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return out


@pytest.mark.parametrize("doc", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_name_files_of_the_repository(doc):
    bad = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.is_relative_to(ROOT) or not path.exists():
            bad.append(f"{target}: no such file in the repository")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            bad.append(f"{target}: no heading #{anchor} in {path.name}")
    assert not bad, f"{doc.relative_to(ROOT)}: " + "; ".join(bad)
