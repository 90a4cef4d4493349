"""The gateway's start reads the user's leases while it reads the course, one round trip fewer
before the update-with-start. The refusal itself (429 without a workflow execution) is tested
end to end in `tests/api/test_isolation_admission.py`; here fakes show the two reads overlap."""

from __future__ import annotations

import asyncio
import gc
from types import SimpleNamespace
from typing import Any, cast

import pytest

from admission import Holder, Leases
from api.auth import Principal
from api.problems import AlreadyCompleted, ConcurrencyLimit, NotYours
from api.ratelimit import StartRateLimiter
from api.starts import StartCommand, Starter
from api.temporal import TemporalConnector
from api.tiers import TierResolver
from db.repository import CourseRead, CourseRepository
from tests.factories import make_settings
from tiers import Tier
from workflows.types import workflow_id_for

USER, COURSE = "u-1", "00000000-0000-4000-8000-000000000001"
FREE_LIMIT = make_settings().admission.policy(Tier.FREE).limit


class Leases_:
    """`usage` marks that it began; it answers `holders`, or raises `error`."""

    def __init__(self, holders: list[Holder], error: Exception | None = None) -> None:
        self.holders, self.error = holders, error
        self.began = asyncio.Event()

    async def usage(self, user_id: str) -> list[Holder]:
        self.began.set()
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        return self.holders


class Courses:
    """`get_course_for` answers only once the lease read has begun: reads made one after the
    other time out here."""

    def __init__(self, leases: Leases_, owner: str, status: str) -> None:
        self.leases, self.owner, self.status = leases, owner, status
        self.metrics: list[str] = []

    async def get_course_for(self, course_id: str, user_id: str) -> CourseRead:
        await asyncio.wait_for(self.leases.began.wait(), timeout=2)
        row = SimpleNamespace(id=course_id, user_id=self.owner, generation_status=self.status)
        return CourseRead(course=cast(Any, row), caller_tier="FREE", undone=None)

    async def record_metric(self, event_type: str, *args: Any, **kwargs: Any) -> None:
        self.metrics.append(event_type)


class NoTemporal:
    async def client(self) -> Any:
        raise AssertionError("a refused or unowned start never reaches Temporal")


def starter(leases: Leases_, owner: str = USER, status: str = "pending") -> tuple[Starter, Courses]:
    courses = Courses(leases, owner, status)
    repository = cast(CourseRepository, courses)
    return Starter(
        make_settings(),
        repository,
        TierResolver(repository),
        cast(TemporalConnector, NoTemporal()),
        StartRateLimiter(cast(Any, None), "test", 0),  # no rate limit: never touches Redis
        cast(Leases, leases),
    ), courses


def command() -> StartCommand:
    return StartCommand(COURSE, webhook_url=None, regenerate=False, request_id="r-1")


def others(count: int) -> list[Holder]:
    return [Holder(workflow_id_for(f"other-{i}"), 1.0, 2.0) for i in range(count)]


async def test_a_user_at_the_limit_is_refused_after_overlapping_reads() -> None:
    leases = Leases_(others(FREE_LIMIT))
    start, courses = starter(leases)
    with pytest.raises(ConcurrencyLimit):
        await start.start(Principal(USER, None), command())
    assert courses.metrics == ["concurrency_limit_hit"]


async def test_a_refused_course_read_leaves_no_lease_read_behind() -> None:
    """Another user's course (404) and a completed one (409): the lease read that began
    alongside still finishes, and its failure (here an unexpected one) is retrieved, not
    reported by asyncio as lost."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    refused: list[tuple[dict[str, str], type[Exception]]] = [
        ({"owner": "someone-else"}, NotYours),
        ({"status": "completed"}, AlreadyCompleted),
    ]
    try:
        for course, problem in refused:
            leases = Leases_([], error=RuntimeError("lease read broke"))
            before = set(asyncio.all_tasks())
            with pytest.raises(problem):
                await starter(leases, **course)[0].start(Principal(USER, None), command())
            await asyncio.sleep(0.01)
            assert set(asyncio.all_tasks()) == before
            gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert reported == []
