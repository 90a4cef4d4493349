"""Named SQL queries from `db/queries.sql`, parsed once at import."""

from __future__ import annotations

import re
from pathlib import Path

QUERIES_FILE = Path(__file__).parent / "queries.sql"
_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """`-- name: x` blocks to {name: sql}; refuses duplicate and empty blocks."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip().rstrip(";").strip()
        if name in queries or not sql:
            raise ValueError(f"{QUERIES_FILE.name}: query {name!r} is duplicated or empty")
        queries[name] = sql
    return queries


QUERIES: dict[str, str] = parse(QUERIES_FILE.read_text(encoding="utf-8"))
