"""Fixtures for workflow tests: stacks of the test's own, workers built by
`worker.build_workers` on fresh task queues."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client

from tests.workflows.support import Stack, Stacks


@pytest.fixture
def stacks(
    temporal_client: Client,
    pg_pool: asyncpg.Pool,
    database_url: str,
    redis_url: str,
    key_prefix: str,
    task_queue: str,
) -> Stacks:
    return Stacks(temporal_client, pg_pool, database_url, redis_url, key_prefix, task_queue)


@pytest_asyncio.fixture
async def stack(stacks: Stacks) -> AsyncIterator[Stack]:
    """Both workers of `worker.build_workers` on this test's queues, plus store handles."""
    async with stacks.open() as opened:
        yield opened
