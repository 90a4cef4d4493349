"""Admission fixtures: a `Leases` store on the session's Redis under a per-test key prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from admission import LeaseKeys, Leases
from tests.factories import write_epoch


@pytest.fixture
def prefix(key_prefix: str) -> str:
    """This test's own key prefix, so tests never see each other's leases."""
    return f"{key_prefix}:{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def leases(redis_client: aioredis.Redis, prefix: str) -> AsyncIterator[Leases]:
    """The store under this test's prefix, with its epoch written (as after a rebuild)."""
    await write_epoch(redis_client, prefix)
    yield Leases(redis_client, prefix)
    await delete_keys(redis_client, prefix)


async def delete_keys(client: aioredis.Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=LeaseKeys(prefix).pattern())]
    if keys:
        await client.delete(*keys)
