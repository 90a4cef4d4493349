"""Reaching the stores and Temporal at start: the worker waits for each as long as it takes."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from temporalio.client import Client
from temporalio.runtime import Runtime

import temporal_connect
from db.migrate import SchemaBehind
from db.pool import UNREACHABLE, Backoff, open_pool
from settings import Settings

log = logging.getLogger("worker")
T = TypeVar("T")
# The worker waits for PostgreSQL as long as it takes, also for a database that migrations have
# not created yet: it may start before the database does.
POSTGRES_BACKOFF = Backoff(
    attempts=None,
    delay=0.5,
    max_delay=30,
    connect_timeout=5,
    retry_on=(*UNREACHABLE, asyncpg.PostgresError, RuntimeError),
)


async def with_retries(what: str, attempt: Callable[[], Awaitable[T]], max_delay: float = 30) -> T:
    """Call `attempt` until it succeeds, backing off; the worker starts even with Temporal down."""
    delay = 0.5
    while True:
        try:
            return await attempt()
        except (OSError, RuntimeError) as exc:
            log.warning("%s unreachable, retrying in %.1fs: %s", what, delay, exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)


async def open_store_pool(settings: Settings) -> asyncpg.Pool:
    """The pool once PostgreSQL answers; a schema behind prints its one line and exits 1."""
    stores = settings.stores
    sizes = (stores.db_pool_min_size, stores.db_pool_max_size)
    try:
        return await open_pool(stores.database_dsn, *sizes, POSTGRES_BACKOFF)
    except SchemaBehind as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


async def connect_with_retries(settings: Settings, runtime: Runtime | None) -> Client:
    return await with_retries(
        "Temporal", lambda: temporal_connect.connect(settings.temporal, runtime=runtime)
    )
