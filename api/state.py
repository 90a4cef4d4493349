"""What the lifespan builds once per process and hands to requests (STYLE §4)."""

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

from activities.leases import Leases, create_redis
from api.auth import JwksCache, TokenVerifier
from api.ratelimit import StartRateLimiter
from api.runs import Runs
from api.starts import Starter
from api.temporal import TemporalConnector
from api.tiers import TierResolver
from db.errors import CONNECTION_ERRORS, DatabaseUnavailable
from db.migrate import check_schema
from db.pool import create_pool
from db.repository import CourseRepository
from settings import Settings

CONNECT_ATTEMPTS = 3
UNREACHABLE: tuple[type[BaseException], ...] = (DatabaseUnavailable, *CONNECTION_ERRORS)
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

    async def aclose(self) -> None:
        await self.pool.close()
        await self.redis.aclose()
        await self.http.aclose()


class State(TypedDict):
    api: ApiState


async def build_state(settings: Settings) -> ApiState:
    """Connect with retries; an unreachable store is logged and served as 503 later."""
    pool = await open_pool(settings)
    redis = create_redis(settings.stores.redis_dsn)
    await _ping_redis(redis)
    http = httpx.AsyncClient()
    jwks = JwksCache(settings.auth.jwks_url, http) if settings.auth.jwks_url else None
    if jwks is not None:
        await jwks.warm()
    courses = CourseRepository(pool)
    tiers = TierResolver(courses)
    temporal = TemporalConnector(settings.temporal)
    limiter = StartRateLimiter(
        redis, settings.stores.redis_key_prefix, settings.api.start_rate_limit_per_minute
    )
    starter = Starter(settings, courses, tiers, temporal, limiter)
    leases = Leases(redis, settings.stores.redis_key_prefix)
    runs = Runs(starter, tiers, temporal, leases, settings.admission)
    verifier = TokenVerifier(settings.auth, jwks)
    return ApiState(settings, pool, redis, http, temporal, verifier, starter, runs)


async def open_pool(settings: Settings) -> asyncpg.Pool:
    """The pool, with the schema checked (`SchemaBehind` propagates: the process must exit).

    When PostgreSQL does not answer after a few tries, an empty pool is returned; it connects
    on first use and `/readyz` reports the outage meanwhile.
    """
    url, stores = settings.stores.database_dsn, settings.stores
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            pool = await create_pool(
                url, stores.db_pool_min_size, stores.db_pool_max_size, connect_timeout=2
            )
        except UNREACHABLE as exc:
            log.warning("postgresql unreachable", attempt=attempt + 1, error=type(exc).__name__)
            await asyncio.sleep(0.25 * 2**attempt)
            continue
        try:
            await check_schema(pool)
        except DatabaseUnavailable:
            await pool.close()
            continue
        except BaseException:
            await pool.close()
            raise
        return pool
    return await create_pool(url, 0, stores.db_pool_max_size, connect_timeout=2)


async def _ping_redis(redis: aioredis.Redis) -> None:
    for attempt in range(CONNECT_ATTEMPTS):
        with suppress(RedisError, OSError):
            await redis.ping()
            return
        log.warning("redis unreachable", attempt=attempt + 1)
        await asyncio.sleep(0.25 * 2**attempt)
