"""The package's modules import each other without cycles (every import counted, including
those inside functions): the layers of lawfit/_options -> _packing -> _backends -> _plan ->
api -> bootstrap, scipy_compat stay a directed graph."""
from __future__ import annotations

import ast
from pathlib import Path

import lawfit

PACKAGE = Path(lawfit.__file__).resolve().parent
# The compiled modules: leaves of the graph (they import nothing of the package's).
COMPILED = {"lawfit._core", "lawfit._cuda"}


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE, package: str = "lawfit") -> dict:
    """{module: the package's modules it imports}, from the source of every module."""
    files = {_module_name(p, root, package): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        base = name.split(".") if is_package else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    stem = base[:len(base) - node.level + 1]
                    module = ".".join(stem + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                # `from m import x` imports module m.x where x is a module, else m itself
                modules = files.keys() | COMPILED
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                           for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in files and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict) -> list:
    """Every cycle found by a depth-first search (as lists of modules)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert {"lawfit.api", "lawfit._backends", "lawfit._plan", "lawfit.reference.lm"} <= set(graph)
    assert "lawfit._plan" in graph["lawfit.api"]  # the graph sees imports
    assert cycles(graph) == []


def test_the_check_finds_a_cycle_through_a_function_level_import(tmp_path):
    """The check itself, on a package shaped like the cycles this test was written against
    (models -> _backends inside a method; a relative import two levels up)."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .models import Model\n")
    (pkg / "models.py").write_text("class Model:\n    def guess(self):\n"
                                   "        from ._backends import engine\n")
    (pkg / "_backends.py").write_text("from ._packing import pack\nengine = 1\n")
    (pkg / "_packing.py").write_text("from . import models\nfrom .sub import leaf\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "leaf.py").write_text("from .._backends import engine\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg._packing"] == {"pkg.models", "pkg.sub.leaf"}
    assert graph["pkg.sub.leaf"] == {"pkg._backends"}
    found = {frozenset(c) for c in cycles(graph)}
    assert found == {frozenset({"pkg._backends", "pkg._packing", "pkg.models"}),
                     frozenset({"pkg._backends", "pkg._packing", "pkg.sub.leaf"})}
    assert cycles({"a": {"b"}, "b": set()}) == []
