"""`reserve_lease` and `release_lease` run in Temporal's ActivityEnvironment on the real Redis."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
import redis.asyncio as aioredis
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import embedded
from activities.admission import AdmissionActivities
from activities.types import ReleaseLeaseInput, ReserveLeaseInput, ReserveLeaseResult
from admission import Leases, create_redis
from tests.factories import make_settings
from workflows import errors
from workflows.types import workflow_id_for

TTL = 3600


def activities(leases: Leases, **settings: str) -> AdmissionActivities:
    return AdmissionActivities(leases, make_settings(**settings).admission, TTL)


async def reserve(
    acts: AdmissionActivities, user: str, tier: str, course: str
) -> ReserveLeaseResult:
    inp = ReserveLeaseInput(user_id=user, tier=tier, workflow_id=workflow_id_for(course))
    result = await ActivityEnvironment().run(acts.reserve_lease, inp)
    assert result is not None, "the store had no epoch"
    return result


async def test_without_the_epoch_reserve_answers_none_and_asks_for_a_rebuild(
    leases: Leases, redis_client: aioredis.Redis
) -> None:
    """A store that lost its epoch cannot decide: the activity answers None (the workflow's
    `unavailable`) at once, and asks for a reconcile pass."""
    asked: list[int] = []

    async def rebuild() -> None:
        asked.append(1)

    await redis_client.delete(leases.keys.epoch)
    acts = AdmissionActivities(leases, make_settings().admission, TTL, rebuild=rebuild)
    inp = ReserveLeaseInput(user_id="u1", tier="FREE", workflow_id=workflow_id_for("c1"))
    assert await ActivityEnvironment().run(acts.reserve_lease, inp) is None
    assert asked == [1]


async def test_reserve_lease_admits_and_reports_the_holder(leases: Leases) -> None:
    """An admitted reserve reports the tier, its limit and the holder with an ISO UTC since."""
    result = await reserve(activities(leases), "u1", "standard", "c1")
    assert (result.decision, result.reason, result.tier, result.limit) == (
        "admitted",
        None,
        "STANDARD",
        3,
    )
    [holder] = result.holders
    assert (holder.course_id, holder.workflow_id) == ("c1", "course-generation-c1")
    assert datetime.fromisoformat(holder.since).utcoffset() is not None


async def test_reserve_lease_rejects_past_the_user_limit(leases: Leases) -> None:
    """A FREE user's second course is rejected with `user_limit`, naming the course held."""
    acts = activities(leases)
    await reserve(acts, "u1", "FREE", "c1")
    result = await reserve(acts, "u1", "FREE", "c2")
    assert (result.decision, result.reason, result.limit) == ("rejected", "user_limit", 1)
    assert [h.course_id for h in result.holders] == ["c1"]


async def test_reserve_lease_rejects_past_the_global_cap(leases: Leases) -> None:
    """With the global cap reached a user under its limit is rejected with `global_limit`."""
    acts = activities(leases, ADMISSION_GLOBAL_CAP="2")
    await reserve(acts, "u1", "PREMIUM", "c1")
    await reserve(acts, "u2", "PREMIUM", "c2")
    result = await reserve(acts, "u2", "PREMIUM", "c3")
    assert (result.decision, result.reason, result.tier) == ("rejected", "global_limit", "PREMIUM")
    assert result.holders == []


@pytest.mark.parametrize("tier", ["basic", "Basic", "BASIC", " bAsIc "])
async def test_tier_strings_match_in_any_case(leases: Leases, tier: str) -> None:
    """A tier in any case gets that tier's limit (BASIC: two admitted, the third rejected)."""
    acts = activities(leases)
    decisions = [(await reserve(acts, "u1", tier, f"c{i}")).decision for i in range(3)]
    assert decisions == ["admitted", "admitted", "rejected"]
    assert (await reserve(acts, "u1", tier, "c9")).tier == "BASIC"


async def test_unknown_tier_is_free_with_a_warning(
    leases: Leases, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown tier string is treated as FREE and logged as a warning."""
    with caplog.at_level(logging.WARNING):
        result = await reserve(activities(leases), "u1", "GOLD", "c1")
    assert (result.tier, result.limit) == ("FREE", 1)
    assert any("unknown tier 'GOLD'" in r.getMessage() for r in caplog.records)


async def test_reserve_lease_is_idempotent_by_workflow_id(leases: Leases) -> None:
    """Reserving twice for one workflow id admits both times and holds one lease."""
    acts = activities(leases)
    first = await reserve(acts, "u1", "FREE", "c1")
    second = await reserve(acts, "u1", "FREE", "c1")
    assert (first.decision, second.decision) == ("admitted", "admitted")
    assert second.holders == first.holders


async def test_release_lease_is_idempotent(leases: Leases) -> None:
    """Releasing twice is harmless, and the freed slot admits another course."""
    acts = activities(leases)
    await reserve(acts, "u1", "FREE", "c1")
    inp = ReleaseLeaseInput(user_id="u1", workflow_id=workflow_id_for("c1"))
    await ActivityEnvironment().run(acts.release_lease, inp)
    await ActivityEnvironment().run(acts.release_lease, inp)
    assert (await reserve(acts, "u1", "FREE", "c2")).decision == "admitted"


async def test_store_down_raises_retryable_lease_store_unavailable() -> None:
    """With Redis unreachable both activities raise a retryable `LeaseStoreUnavailable`."""
    client = create_redis(f"redis://127.0.0.1:{embedded.free_port()}/0")
    acts = activities(Leases(client, "unreachable"))
    release = ReleaseLeaseInput(user_id="u1", workflow_id=workflow_id_for("c1"))
    try:
        with pytest.raises(ApplicationError) as reserved:
            await reserve(acts, "u1", "FREE", "c1")
        with pytest.raises(ApplicationError) as released:
            await ActivityEnvironment().run(acts.release_lease, release)
    finally:
        await client.aclose()
    for raised in (reserved.value, released.value):
        assert (raised.type, raised.non_retryable) == (errors.LEASE_STORE_UNAVAILABLE, False)
