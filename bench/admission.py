"""Admission benchmark: reserve+release pairs next to a trivial EVALSHA.

Both run from the same client on the same Redis in one run, interleaved call by call (one
pair, then two trivial calls), so the load of a shared machine weighs on both alike. A pair is
two script calls, so the target (admission ≥ 50 % of the trivial EVALSHA rate) compares pairs
with pairs of trivial calls; the raw pairs-per-call ratio is printed too. The global set holds
`BACKGROUND` other leases, as a busy system's would.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from itertools import count
from pathlib import Path

import redis.asyncio as aioredis

import embedded
from admission import Leases, create_redis
from bench.common import Stats, measure
from tests.factories import write_epoch

PAIRS = 4000
BACKGROUND = 500
TTL = 3600


async def _pair(leases: Leases, holders: count[int]) -> None:
    holder = f"course-generation-bench-{next(holders)}"
    result = await leases.reserve("bench-user", 5, 100_000, holder, TTL)
    assert result.admitted
    await leases.release("bench-user", holder)


async def _background(leases: Leases) -> None:
    for i in range(BACKGROUND):
        await leases.reserve(f"user-{i % 100}", 5, 100_000, f"course-generation-bg-{i}", TTL)


async def _interleaved(leases: Leases, client: aioredis.Redis) -> tuple[Stats, Stats]:
    """Time a pair, then two trivial calls, in turn: machine noise hits both alike."""
    trivial = client.register_script("return 1")
    holders = count()
    pair_ms: list[float] = []
    call_ms: list[float] = []
    for _ in range(PAIRS):
        began = time.perf_counter()
        await _pair(leases, holders)
        middle = time.perf_counter()
        await trivial()
        await trivial()
        ended = time.perf_counter()
        pair_ms.append((middle - began) * 1000)
        call_ms += [(ended - middle) * 500] * 2  # each trivial call: half of the two
    return (
        Stats.of("reserve+release pair", pair_ms, sum(pair_ms) / 1000),
        Stats.of("trivial EVALSHA (return 1)", call_ms, sum(call_ms) / 1000),
    )


def _report(pair: Stats, call: Stats) -> None:
    print(pair.line())
    print(call.line())
    ratio = 2 * pair.rate / call.rate
    print(f"{'admission vs trivial (pair for pair)':<40} {ratio:6.1%} (target >= 50%)")
    print(f"{'pairs/s per trivial EVALSHA/s (raw)':<40} {pair.rate / call.rate:6.1%}")


async def _cleanup(client: aioredis.Redis, leases: Leases) -> None:
    keys = [key async for key in client.scan_iter(match=leases.keys.pattern())]
    if keys:
        await client.delete(*keys)


async def main() -> None:
    store = await embedded.resolve_redis(os.environ.get("REDIS_URL"), Path(".data/redis"))
    client = create_redis(store.url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    leases = Leases(client, prefix)
    try:
        await write_epoch(client, prefix)
        print(f"redis {store.url} ({store.source}); {BACKGROUND} background leases")
        await _background(leases)
        warm_up = count(10**9)
        await measure("warm-up", lambda: _pair(leases, warm_up), 200)
        _report(*await _interleaved(leases, client))
    finally:
        await _cleanup(client, leases)
        await client.aclose()
        store.stop()


if __name__ == "__main__":
    asyncio.run(main())
