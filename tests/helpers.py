"""Test helpers shared by every tier."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import embedded

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 15.0, interval: float = 0.1
) -> T:
    """Await `check()` until it stops raising AssertionError; re-raise the last one on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def migrated_database(server_url: str, name: str) -> AsyncIterator[str]:
    """Database `name` on the server at `server_url`, every migration applied; its URL, dropped
    afterwards."""
    from db.migrate import migrate

    await embedded.ensure_database(server_url, name)
    url = embedded.with_database(server_url, name)
    await migrate(url)
    yield url
    await embedded.drop_database(server_url, name)
