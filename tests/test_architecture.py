"""The house's rule (docs/architecture.md): a module imports only from its own floor or the floors below."""

import ast
from pathlib import Path

import simulator

FLOORS = {
    1: {"layout", "jit", "errors", "keep", "stats", "distributions", "storage", "results", "report_files",
        "intrinsics", "units", "defaults", "memory"},
    2: {"kernel", "draws", "rng", "lanes", "checks", "fastmath", "samples"},
    3: {"config", "model", "reference", "actuals"},
    4: {"built_model", "summary"},
    5: {"engine", "distributed"},
    6: {"api", "run_folder"},
    7: {"analysis", "judgments", "report", "replay", "scenarios", "export"},
    8: {"cli", "__main__", "__init__"},
}
FLOOR = {module: floor for floor, modules in FLOORS.items() for module in modules}
PACKAGE = Path(simulator.__file__).parent


def package_imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports, at the top or inside a function."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("simulator."):
            out.add(node.module.split(".")[1])
    return out


def test_every_module_has_a_floor():
    assert {p.stem for p in PACKAGE.glob("*.py")} == set(FLOOR)


def test_imports_point_downward():
    upward = [f"{path.stem} (floor {FLOOR[path.stem]}) imports {name} (floor {FLOOR[name]})"
              for path in sorted(PACKAGE.glob("*.py")) for name in package_imports(path)
              if name in FLOOR and FLOOR[name] > FLOOR[path.stem]]
    assert not upward, "\n".join(upward)
