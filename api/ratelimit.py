"""The per-user start-attempt limit (`START_RATE_LIMIT_PER_MINUTE`; 0 turns it off).

A fixed one-minute window per user in Redis (INCR + EXPIRE in one transaction). There is no
per-IP limit: LMS back ends send many users' requests from one address.
"""

from __future__ import annotations

import math
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.problems import DependencyUnavailable, RateLimited

WINDOW_SECONDS = 60


class StartRateLimiter:
    def __init__(self, redis: aioredis.Redis, prefix: str, per_minute: int) -> None:
        self._redis, self._prefix, self._per_minute = redis, prefix, per_minute

    async def hit(self, user_id: str) -> None:
        """Count one start attempt; raise `RateLimited` when the window is already full."""
        if self._per_minute <= 0:
            return
        now = time.time()
        key = f"{self._prefix}:ratelimit:start:{user_id}:{int(now // WINDOW_SECONDS)}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 2 * WINDOW_SECONDS)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable("redis is unavailable") from exc
        if int(count) > self._per_minute:
            retry_after = max(1, math.ceil(WINDOW_SECONDS - now % WINDOW_SECONDS))
            raise RateLimited(
                f"at most {self._per_minute} start attempts per minute",
                headers={"Retry-After": str(retry_after)},
                limit=self._per_minute,
            )
