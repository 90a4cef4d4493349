"""The asyncpg pool, created by the composition roots (worker, API, benchmarks, tests)."""

from __future__ import annotations

import json

import asyncpg


async def init_connection(conn: asyncpg.Connection) -> None:
    """JSON and JSONB columns and arguments travel as Python dicts and lists."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
        )


async def create_pool(
    dsn: str, min_size: int = 1, max_size: int = 10, *, connect_timeout: float = 5.0
) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb to Python values."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        timeout=connect_timeout,
        server_settings={"application_name": "course-generator"},
    )
    assert pool is not None  # create_pool only returns None when not awaited
    return pool
