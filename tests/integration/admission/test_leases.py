"""The lease scripts against the real Redis: decisions, refresh, expiry, release, `since`."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from admission import Leases, RunRef

T0 = 1_000_000.0
TTL = 60.0
RUN_A = RunRef("run-a", T0 - 100)
RUN_B = RunRef("run-b", T0 - 50)  # a later run of the same course


async def test_first_holder_is_admitted(leases: Leases) -> None:
    """A user with no leases is admitted, and the lease is listed with its since and expiry."""
    result = await leases.reserve("u1", 2, 10, "h1", TTL, now=T0)
    assert (result.decision, result.user_count, result.global_count) == ("admitted", 1, 1)
    assert [(h.holder, h.since, h.expires_at) for h in result.holders] == [("h1", T0, T0 + TTL)]


async def test_full_user_set_answers_user_limit(leases: Leases) -> None:
    """A new holder beyond the user's limit is refused with `user_limit` and nothing is added."""
    await leases.reserve("u1", 1, 10, "h1", TTL, now=T0)
    result = await leases.reserve("u1", 1, 10, "h2", TTL, now=T0 + 1)
    assert (result.decision, result.user_count, result.global_count) == ("user_limit", 1, 1)
    assert [h.holder for h in result.holders] == ["h1"]


async def test_full_global_set_answers_global_limit(leases: Leases) -> None:
    """A new holder beyond the global cap is refused with `global_limit` even under its limit."""
    await leases.reserve("u1", 5, 2, "h1", TTL, now=T0)
    await leases.reserve("u2", 5, 2, "h2", TTL, now=T0)
    result = await leases.reserve("u3", 5, 2, "h3", TTL, now=T0)
    assert (result.decision, result.user_count, result.global_count) == ("global_limit", 0, 2)
    assert result.holders == []


async def test_user_limit_is_checked_before_global_limit(leases: Leases) -> None:
    """When both sets are full the answer is `user_limit`."""
    await leases.reserve("u1", 1, 1, "h1", TTL, now=T0)
    result = await leases.reserve("u1", 1, 1, "h2", TTL, now=T0)
    assert result.decision == "user_limit"


async def test_existing_holder_is_readmitted_with_expiry_refreshed(leases: Leases) -> None:
    """Reserving again for the same holder admits it (even at the limits) and moves its expiry."""
    await leases.reserve("u1", 1, 1, "h1", TTL, now=T0)
    result = await leases.reserve("u1", 1, 1, "h1", TTL, now=T0 + 30)
    assert (result.decision, result.user_count, result.global_count) == ("admitted", 1, 1)
    assert [(h.since, h.expires_at) for h in result.holders] == [(T0, T0 + 30 + TTL)]
    assert await leases.usage("u1", now=T0 + TTL + 1) != []


async def test_release_is_idempotent(leases: Leases) -> None:
    """The first release frees the lease; a second one answers False and changes nothing."""
    await leases.reserve("u1", 1, 10, "h1", TTL, now=T0)
    assert await leases.release("u1", "h1", now=T0 + 1) is True
    assert await leases.release("u1", "h1", now=T0 + 2) is False
    assert await leases.usage("u1", now=T0 + 2) == []
    assert (await leases.reserve("u1", 1, 10, "h2", TTL, now=T0 + 3)).decision == "admitted"


async def test_expired_leases_are_pruned_on_the_next_call(
    leases: Leases, redis_client: aioredis.Redis
) -> None:
    """A lease past its expiry no longer counts, and the next reserve deletes it and its since."""
    await leases.reserve("u1", 1, 1, "h1", 10, now=T0)
    assert await leases.usage("u1", now=T0 + 10) == []
    result = await leases.reserve("u1", 1, 1, "h2", 10, now=T0 + 10)
    assert (result.decision, result.user_count, result.global_count) == ("admitted", 1, 1)
    keys = leases.keys
    assert await redis_client.zrange(keys.user("u1"), 0, -1) == ["h2"]
    assert await redis_client.zrange(keys.all, 0, -1) == ["h2"]
    assert await redis_client.hkeys(keys.since) == ["h2"]


async def test_release_of_unknown_holder_is_harmless(leases: Leases) -> None:
    """Releasing a holder nobody holds, or a lease held by another run, leaves it in place."""
    await leases.reserve("u1", 1, 10, "h1", TTL, RUN_B, now=T0)
    assert await leases.release("u1", "nobody", now=T0) is False
    assert await leases.release("u1", "h1", RUN_A.run_id, now=T0) is False
    assert [h.holder for h in await leases.usage("u1", now=T0)] == ["h1"]
    assert [(g.user_id, g.holder) for g in await leases.holders(now=T0)] == [("u1", "h1")]


async def test_a_late_release_from_an_old_run_keeps_the_new_runs_lease(leases: Leases) -> None:
    """Run A's release after run B re-reserved the same holder frees nothing; B's own does."""
    await leases.reserve("u1", 1, 10, "h1", TTL, RUN_A, now=T0)
    await leases.reserve("u1", 1, 10, "h1", TTL, RUN_B, now=T0 + 1)
    assert await leases.release("u1", "h1", RUN_A.run_id, now=T0 + 2) is False
    assert [g.run_id for g in await leases.holders(now=T0 + 2)] == [RUN_B.run_id]
    assert await leases.release("u1", "h1", RUN_B.run_id, now=T0 + 3) is True
    assert await leases.holders(now=T0 + 3) == []


async def test_a_reserve_from_an_older_run_is_refused_as_stale(leases: Leases) -> None:
    """Once run B holds the lease, run A (started earlier) cannot take it back."""
    await leases.reserve("u1", 1, 10, "h1", TTL, RUN_B, now=T0)
    result = await leases.reserve("u1", 1, 10, "h1", TTL, RUN_A, now=T0 + 1)
    assert result.decision == "stale"
    assert [g.run_id for g in await leases.holders(now=T0 + 1)] == [RUN_B.run_id]


async def test_a_lease_under_a_previous_owner_is_released_and_moved(leases: Leases) -> None:
    """The course changed owner: a release by the run frees the lease from the old owner's
    set, and a reserve for the new owner moves it instead of counting it twice."""
    await leases.reserve("u1", 1, 10, "h1", TTL, RUN_A, now=T0)
    assert await leases.release("u2", "h1", RUN_A.run_id, now=T0) is True
    assert await leases.usage("u1", now=T0) == []
    await leases.reserve("u1", 1, 10, "h2", TTL, RUN_A, now=T0)
    moved = await leases.reserve("u2", 1, 10, "h2", TTL, RUN_B, now=T0 + 1)
    assert (moved.decision, moved.global_count) == ("admitted", 1)
    assert await leases.usage("u1", now=T0 + 1) == []


async def test_an_operator_release_frees_whichever_run_holds_it(leases: Leases) -> None:
    """A release without a run id (the operator command) frees the lease unconditionally."""
    await leases.reserve("u1", 1, 10, "h1", TTL, RUN_B, now=T0)
    assert await leases.release("u1", "h1", now=T0) is True
    assert await leases.holders(now=T0) == []


async def test_counts_never_go_negative(leases: Leases, redis_client: aioredis.Redis) -> None:
    """Many releases of one lease leave the counts at zero, and the limit still holds after."""
    await leases.reserve("u1", 1, 10, "h1", TTL, now=T0)
    for _ in range(5):
        await leases.release("u1", "h1", now=T0)
    assert await redis_client.zcard(leases.keys.user("u1")) == 0
    assert await redis_client.zcard(leases.keys.all) == 0
    await leases.reserve("u1", 1, 10, "h2", TTL, now=T0)
    result = await leases.reserve("u1", 1, 10, "h3", TTL, now=T0)
    assert (result.decision, result.user_count, result.global_count) == ("user_limit", 1, 1)


async def test_since_survives_refresh_and_disappears_on_release(
    leases: Leases, redis_client: aioredis.Redis
) -> None:
    """`since` stays the first admission time across refreshes and is deleted on release."""
    await leases.reserve("u1", 2, 10, "h1", TTL, now=T0)
    await leases.reserve("u1", 2, 10, "h1", TTL, now=T0 + 5)
    assert [h.since for h in await leases.usage("u1", now=T0 + 6)] == [T0]
    await leases.release("u1", "h1", now=T0 + 7)
    assert await redis_client.hget(leases.keys.since, "h1") is None
    assert await redis_client.hget(leases.keys.owner, "h1") is None
    result = await leases.reserve("u1", 2, 10, "h1", TTL, now=T0 + 8)
    assert [h.since for h in result.holders] == [T0 + 8]


async def test_redis_time_is_used_without_now(leases: Leases) -> None:
    """Without `now` the scripts use the Redis server clock."""
    result = await leases.reserve("u1", 1, 10, "h1", TTL)
    assert result.holders[0].since == pytest.approx(time.time(), abs=5)
    assert result.holders[0].expires_at == pytest.approx(result.holders[0].since + TTL)
    assert [h.holder for h in await leases.usage("u1")] == ["h1"]
    assert [g.holder for g in await leases.holders()] == ["h1"]
    assert await leases.release("u1", "h1") is True


async def test_holders_lists_every_live_lease_with_its_user(leases: Leases) -> None:
    """`holders()` lists live leases of all users and leaves out expired ones."""
    await leases.reserve("u1", 2, 10, "h1", 10, now=T0)
    await leases.reserve("u2", 2, 10, "h2", 30, now=T0)
    listed = await leases.holders(now=T0 + 20)
    assert [(g.user_id, g.holder, g.since, g.expires_at) for g in listed] == [
        ("u2", "h2", T0, T0 + 30)
    ]


async def test_all_keys_share_one_hash_slot(leases: Leases) -> None:
    """Every admission key hashes to the same Redis Cluster slot."""
    keys = leases.keys
    names = [keys.user("u1"), keys.user("another-user"), *keys.shared, keys.epoch, keys.rebuild]
    assert len({key_slot(name.encode()) for name in names}) == 1
