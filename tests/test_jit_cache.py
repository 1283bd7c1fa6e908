"""numba's cache, keyed on the source that compiled code depends on (``simulator.jit``): numba itself checks a cached
function against its own file only, and freezes the globals it reads (the layout's indices) into the code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from simulator import jit

PACKAGE = Path(jit.__file__).resolve().parent

# Compiles a small function that reads the layout (``checks.first_broken_path``, through the helper it inlines) and
# reports where its cache is and whether the compiled code came from it. Run on a copy of the package, in a process
# of its own.
PROBE = """
import json, numpy as np
from simulator import checks, jit, layout
f = checks.first_broken_path
f(np.ones((1, 1)), np.ones((1, len(layout.ANNUAL_VARS), 2)), np.ones((1, len(layout.SCALAR_VARS))), 0, 0.0)
print(json.dumps({"folder": str(jit.cache_folder(checks.__file__)), "hits": sum(f._cache_hits.values()),
                  "misses": sum(f._cache_misses.values()), "key": jit.cache_key(jit.PACKAGE, "checks")}))
"""


def jitted_modules(package: Path) -> list[str]:
    """The modules of ``package`` whose functions are compiled under ``jit``."""
    return sorted(p.stem for p in package.glob("*.py")
                  if p.stem != "jit" and "jit" in jit.dependencies(package, p.stem))


def copy_package(tmp_path: Path) -> Path:
    copy = tmp_path / "pkg" / "simulator"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def probe(copy: Path, cache_dir: Path, **env) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(copy.parent), "NUMBA_CACHE_DIR": str(cache_dir), **env}
    if "NUMBA_BOUNDSCHECK" not in env:  # a bounds-checked run of the suite still probes the plain build here
        environment.pop("NUMBA_BOUNDSCHECK", None)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=copy.parent, env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_editing_the_layout_changes_the_key_of_every_module_that_reads_it(tmp_path):
    copy = copy_package(tmp_path)
    modules = jitted_modules(copy)
    readers = [m for m in modules if "layout" in jit.dependencies(copy, m)]
    assert {"kernel", "checks", "draws", "samples", "summary"} <= set(readers)
    before = {m: jit.cache_key(copy, m) for m in modules}
    assert before == {m: jit.cache_key(PACKAGE, m) for m in modules}  # the key is of the source, not the folder
    layout = copy / "layout.py"
    layout.write_text(layout.read_text().replace("LANES = 384", "LANES = 256"))
    after = {m: jit.cache_key(copy, m) for m in modules}
    assert sorted(m for m in modules if after[m] != before[m]) == readers
    assert "rng" not in readers and after["rng"] == before["rng"]  # what does not read the layout keeps its cache


def test_a_layout_edit_recompiles_and_a_bounds_checked_build_has_its_own_cache(tmp_path):
    copy = copy_package(tmp_path)
    cache = tmp_path / "cache"
    first = probe(copy, cache)
    assert Path(first["folder"]).parent == cache and first["folder"].endswith(first["key"])  # NUMBA_CACHE_DIR
    assert first["misses"] == 1 and list(Path(first["folder"]).glob("*.nbi"))
    again = probe(copy, cache)
    assert again["folder"] == first["folder"] and again["hits"] == 1 and again["misses"] == 0
    checked = probe(copy, cache, NUMBA_BOUNDSCHECK="1")
    assert checked["folder"] != first["folder"] and checked["misses"] == 1
    layout = copy / "layout.py"
    layout.write_text(layout.read_text().replace('"revenue", "cogs", "fcf"', '"cogs", "revenue", "fcf"')
                      .replace("A_REV, A_COGS, A_FCF", "A_COGS, A_REV, A_FCF"))
    edited = probe(copy, cache)
    assert edited["folder"] != first["folder"] and edited["misses"] == 1 and edited["hits"] == 0
