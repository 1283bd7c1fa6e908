"""The package's one jit policy, and a numba cache keyed on the source that compiled code depends on.

Every jitted function of the package is decorated with :func:`jit`, which fixes the settings that must not vary
between functions: cached, IEEE arithmetic (no fastmath: results are bit-identical on every machine and
between the kernel and ``simulator.reference``), numpy's error model (a division by zero gives inf or NaN, as
the checks downstream expect, and adds no branch to a loop), and the GIL released.

Helpers are inlined into their callers in one of two ways. The kernel's phases (``kernel``'s functions over
the tile's scratch arrays) are inlined by numba (``@jit(inline="always")``: their IR is copied into the
caller's), so LLVM optimises their loops where the tile's scratch arrays and their strides are known: with the
phases too inlined by LLVM after being optimised on their own, the kernel's lane loops were no longer vectorised
and the kernel ran 3x slower. The helpers the phases call, with loops over lanes (``draws``, ``rng``,
``lanes``) or none (``fastmath``), are inlined by LLVM (``@jit(forceinline=True)``: compiled once, marked
``alwaysinline``), at no cost in speed (``benchmarks/compare_kernel.py``): numba's inliner copies and
re-processes a helper's IR at every call site, block by block, each block with a copy of every variable of the
function, and with every helper so inlined numba's passes over the kernel (inlining, SSA reconstruction,
rewrites) took ~45 s of its ~58 s cold compile. Neither kind is cached: only jitted code calls them, and its
cached machine code holds them.

Why a cache of our own: numba checks a cached function against its own file only, and reads module globals
(the layout's row and column indices, the random-number tables) as constants frozen into the compiled code. So a
change to ``layout.py`` would leave ``kernel.py``'s cached code reading the old columns. Here a function's
cache lives in a folder named by a hash of its module's source and of every module of the package it imports,
directly or not, and of the numba settings that change the code (bounds checking, optimisation level): a
change to any of them compiles afresh, into a new folder. ``NUMBA_CACHE_DIR`` is respected: the folders are
made there when it is set, else in the package's ``__pycache__``.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
from pathlib import Path
from typing import Callable

import llvmlite.binding as llvm
import numba
from numba.core import config, event
from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator

# The lane loops of ``kernel.simulate_tiles`` read and write many rows of a few arrays; LLVM vectorises a loop only
# if it can check at run time that those do not overlap, and by default it gives up beyond 8 checks (most of the
# step's loops need more). Raising the limits only allows more checks: the same results, faster loops. Unknown
# options are ignored. Set here, before anything of the package is compiled.
llvm.set_option("", "-runtime-memory-check-threshold=256")
llvm.set_option("", "-vectorize-memory-check-threshold=512")

PACKAGE = Path(__file__).resolve().parent
# Settings every jitted function shares (``jit``'s options may add others: parallel, forceinline).
POLICY = dict(fastmath=False, error_model="numpy", nogil=True)


def jit(fn=None, **options):
    """``numba.njit`` under the package's policy, cached in :func:`cache_folder`. Used bare (``@jit``) or with
    options (``@jit(parallel=True)``, ``@jit(forceinline=True)``). A function defined outside the package's folder
    (a benchmark's modified copy of a module) is not cached: its source is not what the key covers; nor is a
    function that its callers inline (``forceinline``, or numba's ``inline="always"``)."""
    inlined = options.get("forceinline") or options.get("inline") == "always"

    def decorate(py_func):
        dispatcher = numba.njit(**POLICY, **options)(py_func)
        if not inlined and Path(py_func.__code__.co_filename).resolve().parent == PACKAGE:
            dispatcher._cache = _SourceKeyedCache(py_func)  # what njit(cache=True) does, with our locator
        return dispatcher
    return decorate if fn is None else decorate(fn)


def cache_folder(py_file: str | Path) -> Path:
    """Where the compiled functions of module ``py_file`` (a file of this package) are cached."""
    # numba.core.config sets its settings at run time (from the environment): a type checker sees none of them.
    root = Path(config.CACHE_DIR) if config.CACHE_DIR else PACKAGE / "__pycache__"  # type: ignore[attr-defined]
    return root / f"numba-{PACKAGE.name}-{_module_key(Path(py_file).stem)}"


@functools.lru_cache(maxsize=None)
def _module_key(module: str) -> str:
    """``cache_key`` of a module of this package, once a process (its source is read when it is imported)."""
    return cache_key(PACKAGE, module)


def cache_key(package: Path, module: str) -> str:
    """A hash of ``module``'s source and of every module of ``package`` it imports, directly or through others
    (relative imports, or absolute ones of the package by its name), and of the numba settings in
    :func:`numba_settings`."""
    package = Path(package)
    digest = hashlib.sha256(repr(numba_settings()).encode())
    for name in sorted(dependencies(package, module)):
        digest.update(f"\0{name}\0".encode())
        digest.update((package / f"{name}.py").read_bytes())
    return digest.hexdigest()[:16]


def numba_settings() -> tuple:
    """The numba settings a cached function's code depends on beyond its source: a bounds-checked build must not
    share a cache with the unchecked one (numba's own index does not tell them apart)."""
    return (numba.__version__, config.BOUNDSCHECK, config.OPT, config.DEBUGINFO_DEFAULT)  # type: ignore[attr-defined]


def dependencies(package: Path, module: str) -> set[str]:
    """``module`` and the modules of ``package`` (files ``package/NAME.py``) it imports, transitively."""
    found, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in found or not (package / f"{name}.py").is_file():
            continue
        found.add(name)
        todo += _imported(package / f"{name}.py", package.name)
    return found


def _imported(py_file: Path, package_name: str) -> list[str]:
    """The names under the package that ``py_file`` imports (candidates: those that are not modules are dropped
    by ``dependencies``)."""
    names = []
    for node in ast.parse(py_file.read_bytes()).body:  # a module's globals come from its top-level imports
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.level == 0 and (node.module or "").split(".")[0] == package_name):
                parts = (node.module or "").split(".")[1 if node.level == 0 else 0:]
                head = [p for p in parts if p][:1]
                names += head or [alias.name for alias in node.names]  # ``from . import x``: x is a module
        elif isinstance(node, ast.Import):
            names += [a.name.split(".")[1] for a in node.names if a.name.startswith(package_name + ".")]
    return names


class _SourceKeyedLocator(_CacheLocator):
    """numba's cache locator for the package's functions: the folder of ``cache_folder``; its key stands for the
    source, so the files' times are not consulted."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(cache_folder(py_file))
        self._stamp = self._cache_path.rsplit("-", 1)[-1]

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return self._stamp

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        return cls(py_func, py_file)


class _SourceKeyedCacheImpl(CompileResultCacheImpl):
    _locator_classes = [_SourceKeyedLocator]


class _SourceKeyedCache(FunctionCache):
    _impl_class = _SourceKeyedCacheImpl



@contextlib.contextmanager
def compiles_reported(on_start: Callable[[], None], on_end: Callable[[], None]):
    """Inside the block, ``on_start()`` is called when numba starts compiling a function (not loading it from the
    cache) and ``on_end()`` when it is done; the helpers a function compiles on the way are part of its compile.
    For the command line's note that a first run compiles (a minute or more on a small machine)."""
    depth = 0  # numba compiles under its one global lock: the events come one at a time

    class Listener(event.Listener):
        def on_start(self, ev):
            nonlocal depth
            depth += 1
            if depth == 1:
                on_start()

        def on_end(self, ev):
            nonlocal depth
            depth -= 1
            if depth == 0:
                on_end()

    with event.install_listener("numba:compile", Listener()):
        yield
