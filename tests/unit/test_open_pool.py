"""`db.pool.open_pool` against a port nobody listens on: degraded after N tries, or waiting."""

from __future__ import annotations

import asyncio

import pytest

import embedded
from db.pool import Backoff, open_pool


def _dead_dsn() -> str:
    return f"postgresql://postgres@127.0.0.1:{embedded.free_port()}/postgres"


async def test_gives_an_empty_pool_after_its_attempts() -> None:
    """With `attempts` set (the API), an unreachable server yields a pool that connects later."""
    backoff = Backoff(attempts=2, delay=0.01, max_delay=0.01, connect_timeout=0.5)
    pool = await open_pool(_dead_dsn(), 1, 2, backoff)
    try:
        assert pool.get_size() == 0
    finally:
        await pool.close()


async def test_waits_without_a_limit() -> None:
    """Without `attempts` (the worker), it keeps trying until the caller gives up."""
    backoff = Backoff(attempts=None, delay=0.01, max_delay=0.02, connect_timeout=0.2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(open_pool(_dead_dsn(), 1, 2, backoff), timeout=0.5)
