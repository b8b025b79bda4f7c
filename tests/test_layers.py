"""The engine's layers: its modules import one another without a cycle, never the campaign or the
web, and each stays small enough to read.

The import graph counts every `import`/`from ... import` of the package, at module level and inside
functions alike (a function-level import is still a dependency, only a later one); imports under
`if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
MAX_LINES = 450


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, except those under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    walk(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            walk(child)

    walk(tree)
    return found


def import_graph(package: Path = ENGINE) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(engine module -> engine modules it imports, engine module -> outside top-level packages)."""
    modules = {p.stem for p in package.glob("*.py")}
    modules.discard("__init__")
    inner: dict[str, set[str]] = {}
    outer: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        name = "__init__" if path.stem == "__init__" else path.stem
        deps: set[str] = set()
        tops: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == package.name:
                        deps.add(parts[1] if len(parts) > 1 and parts[1] in modules else "__init__")
                    else:
                        tops.add(parts[0])
                continue
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != package.name:
                    tops.add(parts[0])
                    continue
                rest = parts[1:]
            elif node.level == 1:
                rest = node.module.split(".") if node.module else []
            else:  # beyond the package
                tops.add((node.module or "").split(".")[0])
                continue
            if rest and rest[0] in modules:
                deps.add(rest[0])
            else:  # `from . import x`: the package, and each named module
                deps.add("__init__")
                deps.update(a.name for a in node.names if a.name in modules)
        deps.discard(name)
        inner[name] = deps
        outer[name] = tops
    return inner, outer


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_cycles__finds_a_circle_and_passes_a_line() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph__sees_function_level_imports_and_skips_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "engine"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
                              "def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from . import a\nimport campaign.x\n")
    inner, outer = import_graph(pkg)
    assert inner["a"] == {"b"} and inner["b"] == {"__init__", "a"}
    assert "campaign" in outer["b"]
    assert cycles(inner) == [["a", "b"]]
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n")
    assert cycles(import_graph(pkg)[0]) == []


def test_engine__has_no_import_cycle() -> None:
    assert cycles(import_graph()[0]) == []


def test_engine__imports_neither_the_campaign_nor_the_web() -> None:
    offenders = {m: sorted(tops & {"campaign", "web", "cli", "bench", "tests"})
                 for m, tops in import_graph()[1].items() if tops & {"campaign", "web", "cli", "bench", "tests"}}
    assert offenders == {}


def test_engine__modules_stay_short() -> None:
    long = {}
    for path in sorted(ENGINE.glob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            long[path.name] = lines
    assert long == {}


if __name__ == "__main__":  # print the graph's cycles, if any
    found = cycles(import_graph()[0])
    for component in found:
        print(" <-> ".join(component))
    sys.exit(1 if found else 0)
