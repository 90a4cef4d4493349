"""`workflows/` stays deterministic: no IO or nondeterministic imports or calls (STYLE §1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
# `start.py` is client-side (the gateway builds the start with it); the sandbox never loads it.
CLIENT_SIDE = {"start.py"}
ALLOWED = ("__future__", "asyncio", "dataclasses", "collections.abc", "typing", "datetime")
ALLOWED += ("temporalio.workflow", "temporalio.common", "temporalio.exceptions")
ALLOWED += ("workflows",)
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


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    passthrough = _passthrough_blocks(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
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
