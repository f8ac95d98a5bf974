"""The import structure: no cycles, and the torch backend and the command line stay on top.

The graph is read from the source with :mod:`ast`: every ``import`` of a convcheck module,
those inside functions and under ``TYPE_CHECKING`` included, is an edge to the module it names
(``from a import b`` names ``a.b`` when that is a module). Importing a module also runs its
packages' ``__init__``; those implied edges are left out (a package that re-exports its modules
would otherwise be a cycle with each of them).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → file, for every module of the convcheck package."""
    found = {}
    for path in (root / "convcheck").rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the convcheck modules it imports."""
    files = module_files(root)

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                               for alias in node.names)
        graph[module] = {found for name in targets
                         if (found := known(name)) is not None and found != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_and_relative_imports(tmp_path):
    package = tmp_path / "convcheck"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from convcheck.sub import high\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "high.py").write_text("from ..low import f\nfrom . import other\n")
    (package / "sub" / "other.py").write_text("import numpy\n")
    graph = import_graph(tmp_path)
    assert graph["convcheck.low"] == {"convcheck.sub.high"}
    assert graph["convcheck.sub.high"] == {"convcheck.low", "convcheck.sub.other"}
    assert cycles(graph) == [["convcheck.low", "convcheck.sub.high"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_torch_backend_and_the_command_line_are_imported_from_above_only():
    """``convcheck.torch`` is imported by itself and the command line only (the numpy core
    never depends on it: the torch namespace registers itself), and ``convcheck.cli`` by
    itself only."""
    for module, targets in import_graph().items():
        for target in targets:
            if target.startswith("convcheck.torch"):
                assert module.startswith(("convcheck.torch", "convcheck.cli")), (module, target)
            if target.startswith("convcheck.cli"):
                assert module.startswith("convcheck.cli"), (module, target)
