"""The import graph of the source: the gateway never imports the activities, and no two
modules import each other, directly or through others."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = {".venv", "tests", "bench", "docs", ".data"}


def _imported(path: Path) -> set[str]:
    """Modules `path` imports, `from a import b` also counting `a.b` (it may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return names


def source_modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[0] in NOT_SOURCE:
            continue
        modules[".".join(parts).removesuffix(".__init__")] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {
        name: {other for other in _imported(path) if other in modules and other != name}
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` as a path that returns to its start, or []."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_api_does_not_import_activities() -> None:
    """The gateway reads error type names from `workflows.errors`, never from `activities`."""
    offenders = {
        name: sorted(m for m in imports if m.split(".")[0] == "activities")
        for name, imports in import_graph().items()
        if name.split(".")[0] == "api"
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_source_has_no_import_cycle() -> None:
    """No module reaches itself through its imports (a package counts its `__init__`)."""
    assert find_cycle(import_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """The finder reports a three-module cycle and passes an acyclic graph."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []
