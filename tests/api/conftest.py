"""API fixtures: the app in-process (lifespan run) against the session's real stores and dev
server, with the worker running short simulated stages on this module's own task queues."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.api.support import JwksServer, running_app, workers_on
from tests.factories import JWT_SECRET, Keys, make_settings, queue_env


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="session")
def jwks_server(keys: Keys) -> Iterator[JwksServer]:
    with JwksServer(keys.jwks()).running() as server:
        yield server


@pytest.fixture(scope="session")
def api_env(
    database_url: str,
    redis_url: str,
    key_prefix: str,
    temporal_env: WorkflowEnvironment,
    jwks_server: JwksServer,
) -> dict[str, str]:
    """Environment-style settings for the API tests (own queues and key prefix)."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **queue_env(f"api-{suffix}", f"{key_prefix}-api-{suffix}"),
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "SUPABASE_JWKS_URL": jwks_server.url,
        "START_RATE_LIMIT_PER_MINUTE": "0",
        "SIMULATED_STAGE_SECONDS": "0.2",
        "STAGE_HEARTBEAT_TIMEOUT_SECONDS": "2",
        "CORS_ORIGINS": "https://app.example.com",
        "ADMISSION_RETRY_AFTER_SECONDS": "30",
        "STAGE_CLEANUP_ACTIVITIES": "structure_analysis",
    }


@pytest.fixture(scope="session")
def api_settings(api_env: dict[str, str]) -> Settings:
    return make_settings(api_env)


@pytest_asyncio.fixture(scope="session")
async def running_workers(
    api_settings: Settings, temporal_env: WorkflowEnvironment, pg_pool: asyncpg.Pool
) -> AsyncIterator[None]:
    """The real worker (orchestration + simulated stages) on the API tests' task queues."""
    async with workers_on(api_settings, temporal_env.client, pg_pool):
        yield


@pytest_asyncio.fixture(scope="session")
async def client(api_settings: Settings, running_workers: None) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the app (lifespan run once for the session)."""
    async with running_app(api_settings) as http:
        yield http
