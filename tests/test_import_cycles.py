"""No import cycle anywhere in src/ispo (issue 17).

Every ``import`` of an ``ispo`` module is an edge, wherever it is written: at module level, inside a
function (a lazy import still makes the two modules depend on each other) or under ``TYPE_CHECKING``.
``from ispo.a import b`` is an edge to the module ``ispo.a.b`` when there is one, else to ``ispo.a``.
A package's ``__init__`` is its own node, and importing a submodule does not count as importing the
package: ``ispo/methods/__init__.py`` importing ``builtin``, which imports ``ispo.methods.registry``, is
the registration pattern, not a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"

# (importer, imported) edges allowed to close a cycle, each with its reason. Empty: keep it so.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def module_files(src: Path = SRC) -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (path, is_package)}`` for every module of the ``ispo`` package under ``src``."""
    modules = {}
    for path in sorted((src / "ispo").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def import_graph(modules: dict[str, tuple[Path, bool]], src: Path = SRC) -> dict[str, dict[str, list[str]]]:
    """``{importer: {imported: ["path:line (where)", ...]}}`` over the ``ispo`` modules (paths from ``src``)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, list[str]]] = {name: {} for name in modules}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, where in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:  # relative: from the package that holds this module
                    base = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
            for target in targets:
                if target != "ispo" and not target.startswith("ispo."):
                    continue
                resolved = resolve(target)
                if resolved is not None and resolved != name:
                    where_written = f"{path.relative_to(src)}:{node.lineno} ({where})"
                    if where_written not in graph[name].setdefault(resolved, []):
                        graph[name][resolved].append(where_written)
    return graph


def _imports(tree: ast.AST):
    """Every import statement of ``tree`` with where it is: "module", "function" or "TYPE_CHECKING"."""

    def walk(node: ast.AST, where: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, where
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, "function")
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from walk(child, "TYPE_CHECKING")
            else:
                yield from walk(child, where)

    yield from walk(tree, "module")


def find_cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component with more than one module."""
    edges = {a: sorted(b for b in targets if (a, b) not in KNOWN_EXCEPTIONS) for a, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan; the package has well under 1000 modules
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, []):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return [_cycle_in(component, edges) for component in components]


def _cycle_in(component: set[str], edges: dict[str, list[str]]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first back to it)."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in edges[node]:
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target in component and target not in parents:
                    parents[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def describe(cycle: list[str], graph: dict[str, dict[str, list[str]]]) -> str:
    return "\n".join(f"  {a} -> {b}  at {', '.join(graph[a][b])}" for a, b in zip(cycle, cycle[1:]))


def test_no_import_cycle_in_ispo():
    graph = import_graph(module_files())
    assert len(graph) > 50 and graph["ispo.trainer.config"], "the graph should cover the package"
    cycles = find_cycles(graph)
    report = "\n\n".join(" -> ".join(c) + "\n" + describe(c, graph) for c in cycles)
    assert not cycles, f"import cycle(s) in src/ispo:\n{report}"


def test_known_exceptions_are_still_edges():
    """An exception for an import that is gone must go too (each one stands for a real, explained edge)."""
    graph = import_graph(module_files())
    stale = [edge for edge in KNOWN_EXCEPTIONS if edge[1] not in graph.get(edge[0], {})]
    assert not stale, f"stale import-cycle exceptions: {stale}"


def test_the_finder_sees_lazy_and_type_checking_imports(tmp_path):
    """The checker itself: a cycle closed by a function-level and a TYPE_CHECKING import is found and named;
    a package ``__init__`` importing its submodules (which import a sibling) is not a cycle."""
    package = tmp_path / "ispo" / "sub"
    package.mkdir(parents=True)
    (tmp_path / "ispo" / "__init__.py").write_text("")
    (tmp_path / "ispo" / "d.py").write_text("import os\nfrom ispo.sub import b\n")
    (package / "__init__.py").write_text("from ispo.sub import a\nfrom ispo.sub.c import y\n")
    (package / "a.py").write_text("from ispo.sub.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from . import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ispo.sub.a import x\n")
    graph = import_graph(module_files(tmp_path), tmp_path)
    assert graph["ispo.d"] == {"ispo.sub.b": ["ispo/d.py:2 (module)"]}
    assert graph["ispo.sub"].keys() == {"ispo.sub.a", "ispo.sub.c"}
    assert graph["ispo.sub.b"] == {"ispo.sub.c": ["ispo/sub/b.py:2 (function)"]}
    assert graph["ispo.sub.c"] == {"ispo.sub.a": ["ispo/sub/c.py:3 (TYPE_CHECKING)"]}
    cycles = find_cycles(graph)
    assert cycles == [["ispo.sub.a", "ispo.sub.b", "ispo.sub.c", "ispo.sub.a"]]
    assert "ispo.sub.b -> ispo.sub.c  at ispo/sub/b.py:2 (function)" in describe(cycles[0], graph)
    (package / "b.py").write_text("def thing():\n    pass\n")
    assert find_cycles(import_graph(module_files(tmp_path), tmp_path)) == []
