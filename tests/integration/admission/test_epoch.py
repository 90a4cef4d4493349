"""The epoch rule and the reconciler's reads and writes of the lease store, on the real Redis:
no epoch → no admission; a rebuild writes it only if Redis kept the rebuild; pages and
restores."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from admission import LeaseEpochMissing, Leases, RunRef

T0 = 1_000_000.0
TTL = 60.0


async def test_a_store_without_its_epoch_admits_no_one_and_shows_no_usage(
    leases: Leases, redis_client: aioredis.Redis
) -> None:
    """Redis restarted empty (the epoch gone): `reserve` and `usage` refuse, typed; a release
    still works (it can only free)."""
    await leases.reserve("u1", 1, 10, "h1", TTL)
    await redis_client.delete(leases.keys.epoch)
    with pytest.raises(LeaseEpochMissing):
        await leases.reserve("u1", 1, 10, "h2", TTL)
    with pytest.raises(LeaseEpochMissing):
        await leases.usage("u1")
    assert await leases.epoch() is None
    assert await leases.release("u1", "h1") is True


async def test_the_epoch_is_written_only_by_the_rebuild_that_redis_kept(
    leases: Leases, redis_client: aioredis.Redis
) -> None:
    """A rebuild whose marker vanished (a restart) or was taken over writes no epoch; the
    current one does, once."""
    await redis_client.delete(leases.keys.epoch)
    lost = await leases.begin_rebuild()
    await redis_client.delete(leases.keys.rebuild)  # Redis restarted mid-rebuild
    assert await leases.finish_rebuild(lost) is False
    first, second = await leases.begin_rebuild(), await leases.begin_rebuild()
    assert await leases.finish_rebuild(first) is False
    assert await leases.epoch() is None
    assert await leases.finish_rebuild(second) is True
    assert await leases.finish_rebuild(second) is False
    assert await leases.epoch() is not None
    assert (await leases.reserve("u1", 1, 10, "h1", TTL)).admitted


async def test_restore_puts_back_a_lease_once_and_never_over_an_existing_one(
    leases: Leases,
) -> None:
    """`restore` writes the lease with the given expiry, owner, run and since; a holder that
    already has a lease keeps it."""
    run = RunRef("run-1", T0 - 10)
    assert await leases.restore("u1", "h1", run, T0 + 100, T0 - 5) is True
    assert await leases.restore("u1", "h1", RunRef("run-0", T0 - 20), T0 + 900, T0) is False
    [held] = await leases.holders(now=T0)
    assert (held.user_id, held.holder, held.run_id) == ("u1", "h1", "run-1")
    assert (held.since, held.expires_at) == (T0 - 5, T0 + 100)
    assert await leases.leases_of(["h1", "h2"]) == {"h1": run}
    refused = await leases.reserve("u1", 1, 10, "h2", TTL, now=T0)
    assert refused.decision == "user_limit"


async def test_pages_walk_every_live_lease_in_bounded_pieces(leases: Leases) -> None:
    """ZSCAN pages of a few hundred leases: each live lease once or more, expired ones not,
    and no page much larger than asked."""
    for i in range(300):
        await leases.reserve(f"u{i}", 1, 1000, f"h{i}", TTL if i % 10 else 1, now=T0)
    seen: set[str] = set()
    cursor, pages = "0", 0
    while True:
        cursor, page = await leases.holders_page(cursor, 50, now=T0 + 10)
        assert len(page) <= 100
        seen |= {lease.holder for lease in page}
        pages += 1
        if cursor == "0":
            break
    assert pages > 1
    assert seen == {f"h{i}" for i in range(300) if i % 10}
