"""The asyncpg pool, created by the composition roots (worker, API, benchmarks, tests).

`open_pool` is how the worker and the API open theirs: PostgreSQL retried with backoff, then
the schema checked (`SchemaBehind` propagates, and the process exits).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import asyncpg
import structlog

from db.errors import CONNECTION_ERRORS, DatabaseUnavailable
from db.migrate import check_schema

UNREACHABLE: tuple[type[BaseException], ...] = (DatabaseUnavailable, *CONNECTION_ERRORS)
log = structlog.get_logger("db.pool")


@dataclass(frozen=True)
class Backoff:
    """How long `open_pool` waits for PostgreSQL.

    `attempts` tries (None: until it answers), `delay` seconds after the first failure, doubling
    up to `max_delay`; each connect gives up after `connect_timeout`. `retry_on` is what counts
    as "not answering yet" while the pool is created.
    """

    attempts: int | None
    delay: float
    max_delay: float
    connect_timeout: float
    retry_on: tuple[type[BaseException], ...] = UNREACHABLE


async def init_connection(conn: asyncpg.Connection) -> None:
    """JSON and JSONB columns and arguments travel as Python dicts and lists."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
        )


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing beyond what asyncpg always does (roll back an open
    transaction, drop listener callbacks). Its default also sends `RESET ALL`, `UNLISTEN *`,
    `CLOSE ALL` and an advisory unlock, one more round trip for every query; our pooled
    connections hold no session state (settings are transaction-local, LISTEN has its own
    connection, and so has the migrations' advisory lock)."""


async def create_pool(
    dsn: str, min_size: int = 1, max_size: int = 10, *, connect_timeout: float = 5.0
) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb to Python values."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        reset=keep_session,
        timeout=connect_timeout,
        server_settings={"application_name": "course-generator"},
    )
    assert pool is not None  # create_pool only returns None when not awaited
    return pool


async def open_pool(dsn: str, min_size: int, max_size: int, backoff: Backoff) -> asyncpg.Pool:
    """A connected pool on a current schema, retried as `backoff` says.

    When PostgreSQL has not answered after `backoff.attempts` tries, the pool returned is empty:
    it connects on first use (the API starts degraded, its `/readyz` naming the outage).
    """
    attempt, delay = 1, backoff.delay
    while True:
        try:
            return await _checked_pool(dsn, min_size, max_size, backoff)
        except DatabaseUnavailable as exc:
            log.warning("postgresql unreachable", attempt=attempt, error=str(exc))
        if backoff.attempts is not None and attempt >= backoff.attempts:
            return await create_pool(dsn, 0, max_size, connect_timeout=backoff.connect_timeout)
        await asyncio.sleep(delay)
        attempt, delay = attempt + 1, min(delay * 2, backoff.max_delay)


async def _checked_pool(dsn: str, min_size: int, max_size: int, backoff: Backoff) -> asyncpg.Pool:
    """The pool, schema checked; `DatabaseUnavailable` while PostgreSQL does not answer."""
    timeout = backoff.connect_timeout
    try:
        pool = await create_pool(dsn, min_size, max_size, connect_timeout=timeout)
    except backoff.retry_on as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        await check_schema(pool)
    except BaseException:
        await pool.close()
        raise
    return pool
