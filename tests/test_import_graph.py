"""The shape of ``app/``'s import graph: no cycles, and the Slack and Matrix adapters apart.

Every import counts — module level, lazy ones inside functions and those under
``TYPE_CHECKING`` — because each is a dependency a reader has to follow and a refactoring has to
respect. The graph is read from the source with :mod:`ast`; nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
# The one cycle allowed: the models module and the table modules it re-exports (each table
# module refers back to the shared declarative base).
MODELS = "app.store.models"


def module_names(root: Path = APP) -> dict[str, Path]:
    """Every module under ``root`` by dotted name (a package by its own name)."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, list[str]]]:
    """(module, names) of every import statement anywhere in ``tree``, made absolute."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, [alias.name for alias in node.names]


def import_graph(root: Path = APP) -> dict[str, set[str]]:
    """Module -> the modules of ``app`` it imports (``from pkg import mod`` counts as ``mod``)."""
    modules = module_names(root)

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for target, names in _imported(tree, module, path.name == "__init__.py"):
            if target != "app" and not target.startswith("app."):
                continue
            found = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            for name in found or [target]:
                resolved = owner(name)
                if resolved is not None and resolved != module:
                    edges.add(resolved)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _allowed(component: list[str]) -> bool:
    """The models module with its own table modules (``app.store.models_*``) only."""
    return MODELS in component and all(
        m == MODELS or m.startswith(f"{MODELS}_") for m in component
    )


def _in(package: str, module: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_the_graph_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "app"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.b import B\n"
    )
    (pkg / "b.py").write_text("def f():\n    from app.sub import c\n")
    (pkg / "sub" / "c.py").write_text("from .. import a\n")
    graph = import_graph(pkg)
    assert graph["app.a"] == {"app.b"}
    assert graph["app.b"] == {"app.sub.c"}
    assert graph["app.sub.c"] == {"app.a"}
    assert cycles(graph) == [["app.a", "app.b", "app.sub.c"]]


def test_no_import_cycles_but_the_models_and_their_tables() -> None:
    found = [c for c in cycles(import_graph()) if not _allowed(c)]
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_slack_and_matrix_adapters_import_nothing_of_each_other() -> None:
    graph = import_graph()
    crossing = sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        for a, b in (("app.slack", "app.matrix"), ("app.matrix", "app.slack"))
        if _in(a, module) and _in(b, target)
    )
    assert crossing == []


def test_the_core_imports_no_adapter() -> None:
    graph = import_graph()
    outside = sorted(
        (module, target)
        for module, targets in graph.items()
        if _in("app.core", module)
        for target in targets
        if not _in("app.core", target) and target != "app.errors"
    )
    assert outside == []
