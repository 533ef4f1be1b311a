"""The layering of docs/ARCHITECTURE.md, enforced: imports point down, and no module imports
itself back through others.

Imports are read with ``ast`` from the source (module-level and function-level alike: a lazy
import is still a dependency), so the test needs no import of the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "diffprog"

# Lowest first. A module may import modules of its own layer or of a lower one. Prefixes match
# whole dotted names: "diffprog.kernels" covers diffprog.kernels.fuse.
LAYERS: list[tuple[str, ...]] = [
    ("diffprog.tree", "diffprog.core", "diffprog.config"),
    ("diffprog.graph", "diffprog.prims"),
    ("diffprog.numpy",),
    ("diffprog.ad", "diffprog.custom", "diffprog.api_util", "diffprog.batching"),
    ("diffprog.jit", "diffprog.passes", "diffprog.kernels", "diffprog.control"),
    ("diffprog.nn", "diffprog.testing", "diffprog.optim", "diffprog.scipy",
     "diffprog.distributed"),
    ("diffprog",),  # the package itself re-exports everything
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> set[str]:
    """The diffprog modules that ``module`` imports (at any depth of its code)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES and m != module}


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), level
    if rank < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to the picture "
                             "in docs/ARCHITECTURE.md)")
    return rank


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    up = sorted(m for m in imports_of(module) if layer_of(m) > layer_of(module))
    assert not up, f"{module} (layer {layer_of(module)}) imports higher layers: {up}"


@pytest.mark.slow
def test_no_import_cycles() -> None:
    graph = {m: imports_of(m) for m in MODULES}
    # A package's __init__ importing its own submodules is how packages are assembled; a
    # submodule importing its package back is the cycle we forbid.
    for m, deps in graph.items():
        graph[m] = {d for d in deps if not (MODULES[m].name == "__init__.py"
                                            and d.startswith(m + "."))}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_checker_sees_lazy_and_relative_imports() -> None:
    # guards the test itself: jit imports ad inside a function, relatively
    assert "diffprog.ad" in imports_of("diffprog.jit")
    assert "diffprog.core" in imports_of("diffprog.prims.shape")
