"""Admission benchmark (DESIGN §8): reserve+release pairs next to a trivial EVALSHA.

Both run from the same client on the same Redis in one run, in alternating rounds (the median
round counts). A pair is two script calls, so the target (admission ≥ 50 % of the trivial
EVALSHA rate) compares pairs with pairs of trivial calls; the raw pairs-per-call ratio is
printed too. The global set holds `BACKGROUND` other leases, as a busy system's would.
"""

from __future__ import annotations

import os
import statistics
import uuid
from itertools import count
from pathlib import Path

import redis.asyncio as aioredis

import embedded
from activities.leases import Leases, create_redis
from bench.common import Stats, measure

PAIRS = 1500
ROUNDS = 3
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


async def _rounds(leases: Leases, client: aioredis.Redis) -> tuple[list[Stats], list[Stats]]:
    trivial = client.register_script("return 1")
    holders = count()
    pairs: list[Stats] = []
    calls: list[Stats] = []
    for _ in range(ROUNDS):
        pairs.append(await measure("reserve+release pair", lambda: _pair(leases, holders), PAIRS))
        calls.append(await measure("trivial EVALSHA (return 1)", lambda: trivial(), 2 * PAIRS))
    return pairs, calls


def _median(rounds: list[Stats]) -> Stats:
    rates = [s.rate for s in rounds]
    return rounds[rates.index(statistics.median_low(rates))]


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
    leases = Leases(client, f"bench-{uuid.uuid4().hex[:8]}")
    try:
        print(f"redis {store.url} ({store.source}); {BACKGROUND} background leases")
        await _background(leases)
        await measure("warm-up", lambda: _pair(leases, count(10**9)), 200)
        pairs, calls = await _rounds(leases, client)
        _report(_median(pairs), _median(calls))
    finally:
        await _cleanup(client, leases)
        await client.aclose()
        store.stop()


if __name__ == "__main__":
    import asyncio

    asyncio.run(main())
