"""API fixtures: the app in-process (lifespan run) against the session's real stores and dev
server, with the worker running short simulated stages on this module's own task queues."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

import embedded
import observability
import temporal_connect
from admission import create_redis
from settings import Settings
from tests.api.observed import OwnRandomIds, SpanRecorder
from tests.api.sse_support import Served, served_app
from tests.api.support import JwksServer, running_app, workers_on
from tests.factories import JWT_SECRET, Keys, make_settings, queue_env, write_epoch
from worker import build_workers


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
        # Every test app starts in this one process: each start-up would freeze whatever the
        # session holds at that moment, never to be collected once it becomes cyclic garbage
        # (`test_health` checks the freeze on its own).
        "API_GC_FREEZE": "false",
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


@pytest_asyncio.fixture(scope="session")
async def served(api_settings: Settings, running_workers: None) -> AsyncIterator[Served]:
    """The app under uvicorn on a free port, for the tests that read streams."""
    async with served_app(api_settings) as app:
        yield app


@pytest_asyncio.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the served app."""
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=served.url, limits=limits, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def span_recorder() -> SpanRecorder:
    """The process's tracer provider, installed once, recording while a test arms it."""
    recorder = SpanRecorder()
    provider = observability.new_provider("course-generator", "test", "0.0.0", OwnRandomIds())
    provider.add_span_processor(recorder)
    observability.install(provider)
    return recorder


@dataclass(frozen=True)
class Observed:
    http: httpx.AsyncClient  # the app, in-process
    worker_metrics: str  # the worker's Prometheus endpoint
    settings: Settings


@pytest_asyncio.fixture(scope="module")
async def observed(
    api_env: dict[str, str], span_recorder: SpanRecorder, pg_pool: asyncpg.Pool
) -> AsyncIterator[Observed]:
    """The app and the worker as the processes build them: the worker's client made by
    `temporal_connect.connect` (traced) on a runtime serving Prometheus on a free port."""
    suffix = uuid.uuid4().hex[:8]
    env = {**api_env, **queue_env(f"observed-{suffix}", f"{api_env['REDIS_KEY_PREFIX']}-{suffix}")}
    settings = make_settings(env)
    port = embedded.free_port()
    runtime = observability.metrics_runtime(port, "127.0.0.1")
    client = await temporal_connect.connect(settings.temporal, runtime=runtime)
    redis = create_redis(settings.stores.redis_url or "")
    await write_epoch(redis, settings.stores.redis_key_prefix)
    async with AsyncExitStack() as stack:
        for worker in build_workers(client, settings, pg_pool, redis):
            await stack.enter_async_context(worker)
        http = await stack.enter_async_context(running_app(settings))
        yield Observed(http, f"http://127.0.0.1:{port}/metrics", settings)
    await redis.aclose()
