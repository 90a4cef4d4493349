"""What the lifespan builds once per process (`build_state`) and hands to requests through
`api.deps`; `ApiState.aclose` closes it when the process stops."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass
from typing import TypedDict

import asyncpg
import httpx
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from admission import Leases, create_redis
from api.auth import JwksCache, TokenVerifier
from api.ratelimit import StartRateLimiter
from api.runs import Runs
from api.sse.service import ProgressEvents
from api.starts import Starter
from api.temporal import TemporalConnector
from api.tiers import TierResolver
from db.pool import Backoff, open_pool
from db.repository import CourseRepository
from settings import Settings

CONNECT_ATTEMPTS = 3
# A few quick tries, then an empty pool: the API starts with PostgreSQL down and `/readyz`
# reports the outage until the pool connects on first use.
POSTGRES_BACKOFF = Backoff(attempts=CONNECT_ATTEMPTS, delay=0.25, max_delay=1, connect_timeout=2)
log = structlog.get_logger("api.state")


@dataclass
class ApiState:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    http: httpx.AsyncClient
    temporal: TemporalConnector
    verifier: TokenVerifier
    starter: Starter
    runs: Runs
    events: ProgressEvents

    async def aclose(self) -> None:
        await self.events.aclose()
        await self.pool.close()
        await self.redis.aclose()
        await self.http.aclose()


class State(TypedDict):
    api: ApiState


async def build_state(settings: Settings) -> ApiState:
    """Connect with retries; an unreachable store is logged and served as 503 later."""
    stores = settings.stores
    pool = await open_pool(
        stores.database_dsn, stores.db_pool_min_size, stores.db_pool_max_size, POSTGRES_BACKOFF
    )
    redis = create_redis(stores.redis_dsn)
    await _ping_redis(redis)
    http = httpx.AsyncClient()
    jwks = JwksCache(settings.auth.jwks_url, http) if settings.auth.jwks_url else None
    if jwks is not None:
        await jwks.warm()
    courses = CourseRepository(pool)
    tiers = TierResolver(courses)
    temporal = TemporalConnector(settings.temporal)
    limiter = StartRateLimiter(
        redis, stores.redis_key_prefix, settings.api.start_rate_limit_per_minute
    )
    leases = Leases(redis, stores.redis_key_prefix)
    starter = Starter(settings, courses, tiers, temporal, limiter, leases)
    runs = Runs(starter, tiers, temporal, leases, settings)
    verifier = TokenVerifier(settings.auth, jwks)
    events = ProgressEvents(courses, stores.database_dsn, temporal)
    await events.start()
    return ApiState(settings, pool, redis, http, temporal, verifier, starter, runs, events)


async def _ping_redis(redis: aioredis.Redis) -> None:
    for attempt in range(CONNECT_ATTEMPTS):
        with suppress(RedisError, OSError):
            await redis.ping()
            return
        log.warning("redis unreachable", attempt=attempt + 1)
        await asyncio.sleep(0.25 * 2**attempt)
