"""The shape of the code: packages stack one way, no import cycles, ruff clean.

LAYERS is docs/architecture.md's picture, lowest first: a module may import from its own
layer and the layers below it, never above. Every import counts, the ones inside
functions and under TYPE_CHECKING too, so the schema/addresses/reachability cycle of 0.3
cannot come back.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "netmodel"

LAYERS = (
    ("netmodel", "netmodel.vocabulary", "netmodel.errors", "netmodel.units", "netmodel.limits",
     "netmodel.reading", "netmodel.writing", "netmodel.streams", "netmodel.stations"),
    ("netmodel.scenario.schema",),
    ("netmodel.costs.profile",),
    ("netmodel.cluster",),
    ("netmodel.paths",),
    ("netmodel.costs",),
    ("netmodel.scenario",),
    ("netmodel.controlplane",),
    ("netmodel.connections",),
    ("netmodel.engines",),
    ("netmodel.results",),
    ("netmodel.runner",),
    ("netmodel.calibration",),
    ("netmodel.validation",),
    ("netmodel.api",),
    ("netmodel.cli",),
)
"""Module prefixes by layer; a module belongs to the layer of its longest matching prefix."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """netmodel modules `path` imports (a `from package import name` of a submodule
    counts as that submodule)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("netmodel"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("netmodel"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in modules else node.module)
    return out


def _layer(module: str) -> int:
    best, layer = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), i
    assert layer is not None, f"{module} is in no layer: add it to LAYERS"
    return layer


def test_every_module_imports_only_from_its_layer_and_below():
    modules = _modules()
    upward = [f"{m} (layer {_layer(m)}) imports {i} (layer {_layer(i)})"
              for m, path in modules.items() for i in sorted(_imports(path, modules))
              if _layer(i) > _layer(m)]
    assert upward == []


def test_there_is_no_import_cycle():
    modules = _modules()
    graph = {m: _imports(path, modules) & modules.keys() - {m} for m, path in modules.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_package_root_imports_nothing_eagerly():
    """`import netmodel` stays light: the API is imported on first use."""
    root = PACKAGE / "__init__.py"
    assert _imports(root, _modules()) == set()


def test_ruff_finds_nothing():
    """pyflakes, import order, and mccabe complexity at most 11 (pyproject.toml
    [tool.ruff]); no exceptions are listed."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    done = subprocess.run([ruff, "check", "--output-format", "concise", "netmodel", "tests",
                           "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_subpackage_shadows_a_public_name():
    """`import netmodel.run.point` once bound `netmodel.run` to the package, hiding the API's
    `run()`: a public name must not also be a module of the package."""
    import netmodel

    modules = {m.split(".")[1] for m in _modules() if m.count(".") >= 1}
    assert modules.isdisjoint(netmodel.__all__)
