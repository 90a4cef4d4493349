"""How long a started stage's heartbeat details have stayed the same, remembered across passes.

A describe shows the current details, not when they last changed, so each pass notes the
stage's signature (activity, attempt, digest of the details) per run, with when it was first
seen. Kept in Redis under the key prefix, each for a bounded time: losing it (a Redis restart)
only restarts the clock.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from admission import LeaseStoreUnavailable
from reconciler.runs import PendingStage

MIN_MEMORY_SECONDS = 3600


class ProgressMemory:
    def __init__(self, redis: aioredis.Redis, prefix: str, stuck_after_seconds: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._keep = int(max(MIN_MEMORY_SECONDS, 4 * stuck_after_seconds))

    async def unchanged_since(self, run_id: str, stage: PendingStage, now: float) -> float:
        """Since when `stage` of `run_id` has shown these details: when first seen, or its
        start when it has sent none at all."""
        signature = f"{stage.activity_id}:{stage.attempt}:{stage.progress}"
        key = f"{self._prefix}:reconciler:progress:{run_id}"
        try:
            async with asyncio.timeout(1.5):
                value = _text(await self._redis.get(key))
                seen, _, since = value.rpartition("|")
                if value and seen == signature:
                    return float(since)
                first = stage.started_at if not stage.progress and stage.started_at else now
                await self._redis.set(key, f"{signature}|{first:.6f}", ex=self._keep)
                return first
        except (RedisError, OSError, TimeoutError) as exc:
            raise LeaseStoreUnavailable(f"reconciler progress memory: {exc}") from exc


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
