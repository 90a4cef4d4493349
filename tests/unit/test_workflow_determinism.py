"""`workflows/` stays deterministic, so Temporal can replay every run: no IO and no
nondeterministic imports or calls, activity code only through the sandbox passthrough."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
# `start.py` is client-side (the gateway builds the start with it); the sandbox never loads it.
CLIENT_SIDE = {"start.py"}
ALLOWED = (
    *("__future__", "asyncio", "dataclasses", "collections.abc", "typing", "datetime"),
    *("temporalio.workflow", "temporalio.common", "temporalio.exceptions"),
    "workflows",
)
PASSED_THROUGH = ("activities", "tiers")
FORBIDDEN_NAMES = {"now", "utcnow", "today", "uuid4", "uuid1", "random", "randint", "time", "sleep"}
FORBIDDEN_FROM_DATETIME = {"datetime", "date"}


def _modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""]


def _passthrough_blocks(tree: ast.Module) -> set[int]:
    """Line numbers of imports inside `with workflow.unsafe.imports_passed_through():`."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
            "imports_passed_through" in ast.unparse(item.context_expr) for item in node.items
        ):
            lines |= {child.lineno for child in ast.walk(node) if hasattr(child, "lineno")}
    return lines


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    if module == "temporalio":  # `from temporalio import workflow`; not temporalio.client
        return True
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _typing_only(tree: ast.Module) -> set[int]:
    """Line numbers inside `if TYPE_CHECKING:` (imported for the type checker only)."""
    return {
        child.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
        if hasattr(child, "lineno")
    }


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    passthrough, typing_only = _passthrough_blocks(tree), _typing_only(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno not in typing_only:
            allowed = PASSED_THROUGH + ALLOWED if node.lineno in passthrough else ALLOWED
            found += [f"import {m}" for m in _modules(node) if not _within(m, allowed)]
            if isinstance(node, ast.ImportFrom) and node.module == "datetime":
                found += [f"from datetime import {a.name}" for a in node.names
                          if a.name in FORBIDDEN_FROM_DATETIME]  # fmt: skip
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            owner = ast.unparse(node.value)
            if not owner.startswith("workflow"):
                found.append(f"{owner}.{node.attr}")
    return [f"{path.name}:{v}" for v in found]


@pytest.mark.parametrize(
    "path", sorted(p for p in WORKFLOWS.glob("*.py") if p.name not in CLIENT_SIDE), ids=str
)
def test_workflow_module_is_deterministic(path: Path) -> None:
    """A workflow module imports only deterministic modules and calls no clock or randomness."""
    assert violations(path) == []


def test_checker_catches_io(tmp_path: Path) -> None:
    """The checker flags asyncpg, settings, datetime.now and uuid4 outside the passthrough."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import asyncpg\nfrom settings import Settings\nimport uuid\n"
        "from datetime import datetime\nx = datetime.now()\ny = uuid.uuid4()\n"
    )
    assert len(violations(bad)) == 6
    client = tmp_path / "client.py"
    client.write_text("from temporalio.client import Client\n")
    assert violations(client) == ["client.py:import temporalio.client"]


ROOT = WORKFLOWS.parent
# Modules the sandbox may reach through any chain of imports, pass-through ones included.
IO_FREE = (
    *("__future__", "asyncio", "dataclasses", "collections.abc", "typing", "datetime", "enum"),
    *("temporalio.workflow", "temporalio.common", "temporalio.exceptions"),
)
IO_FREE_LOCAL = ("workflows", "activities.types", "activities", "tiers")


def _local_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _runtime_imports(path: Path) -> set[str]:
    """Every module `path` imports when it runs (not those under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only = _typing_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno not in typing_only:
            found |= set(_modules(node))
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def import_closure(start: list[Path]) -> tuple[set[str], set[str]]:
    """The local modules reachable from `start`, and the outside modules they import."""
    local: set[str] = set()
    outside: set[str] = set()
    queue = [name for path in start for name in _runtime_imports(path)]
    while queue:
        module = queue.pop()
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            path = _local_path(name)
            if path is None:
                if depth == 1 or _local_path(".".join(parts[: depth - 1])) is None:
                    outside.add(module)
                break
            if name not in local:
                local.add(name)
                queue += list(_runtime_imports(path))
    return local, outside


def test_transitive_imports_of_workflows_are_io_free() -> None:
    """Following every import from `workflows/` (pass-through ones too) reaches no IO module:
    no asyncpg, redis, httpx, settings or database code gets into the workflow sandbox."""
    start = sorted(p for p in WORKFLOWS.glob("*.py") if p.name not in CLIENT_SIDE)
    local, outside = import_closure(start)
    assert sorted(m for m in local if not _within(m, IO_FREE_LOCAL)) == []
    assert sorted(m for m in outside if not _within(m, IO_FREE)) == []


def test_closure_follows_pass_through_imports() -> None:
    """The closure walks into the modules a workflow module imports, so IO two hops away shows."""
    local, outside = import_closure([ROOT / "activities" / "course.py"])
    assert "db.repository" in local
    assert "asyncpg" in outside
