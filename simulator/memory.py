"""How the process's large arrays are backed: :func:`small_pages`. A module of its own so that the command line
holds it for every command without loading the engine (numba)."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def small_pages():
    """Inside the block numpy puts new large arrays on ordinary pages. It advises Linux to back those of 4 MB or
    more with transparent huge pages, and where the kernel compacts memory on such a fault (defrag "madvise", a
    common default, and the benchmark VM's) the first write to a fresh array is ~4x slower: 112 MB took 0.26 s
    instead of 0.063 s there, `simulator run --paths 1000000` (every row kept) 6.7-7.6 s instead of 5.4-5.8 s.
    A run writes and reads its arrays in order, so huge pages' fewer TLB misses gain it little. The command line
    holds this for its whole process, a library call for the run; numpy's setting is restored on exit, and
    NUMPY_MADVISE_HUGEPAGE in the environment leaves numpy's choice alone."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        yield
        return
    # A private function of numpy's; imported here, not at the top, so that `simulator --help` does not load numpy.
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _set_madvise_hugepage
    before = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(before)
