"""Admission through update-with-start: rejected, duplicate, unavailable."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import embedded
from tests.helpers import eventually
from tests.workflows.support import Stack, Stacks
from workflows import search_attributes as sa

HOLD = {"hold_at_step": 2, "hold_seconds": 60}


async def test_second_concurrent_course_of_a_free_user_is_rejected(stack: Stack) -> None:
    """A FREE user's second concurrent start is rejected and never touches its course row."""
    first = await stack.create_course(tier="FREE", simulation=HOLD)
    second = await stack.create_course(tier="FREE", user_id=first.user_id)
    admitted, first_handle = await stack.start(first)
    assert admitted.decision == "admitted"

    result, handle = await stack.start(second)
    assert result.decision == "rejected"
    assert result.reason == "user_limit"
    assert (result.tier, result.limit) == ("FREE", 1)
    assert [h.course_id for h in result.holders] == [first.course_id]
    outcome = await handle.result()
    assert (outcome.outcome, outcome.reason) == ("rejected", "user_limit")

    row = await stack.repository.get_course(second.course_id)
    assert row is not None
    assert (row.generation_status, row.run_id, row.workflow_id) == (None, None, None)
    assert row.generation_progress == {"simulation": {}}
    assert await stack.statuses(second.course_id) == []
    assert len(await stack.metrics(second.course_id, "concurrency_limit_hit")) == 1
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.GENERATION_STATUS) == "rejected"
    await first_handle.cancel()


async def test_second_start_of_a_running_course_attaches(stack: Stack) -> None:
    """A second start of a running course answers admitted, new_run false, same run; recorded."""
    course = await stack.create_course(simulation=HOLD)
    first, handle = await stack.start(course, token="token-1")
    again, _ = await stack.start(course, token="token-2")
    assert again.decision == "admitted"
    assert again.new_run is False
    assert again.run_id == first.run_id
    retried, _ = await stack.start(course, token="token-1")
    assert retried.new_run is True  # the same request retried is still the one that started it

    async def recorded() -> None:
        assert len(await stack.metrics(course.course_id, "duplicate_job_detected")) == 1

    await eventually(recorded)
    assert len(await stack.leases.usage(course.user_id)) == 1
    await handle.cancel()


# The SDK warns when core times out a local activity attempt that has just finished (a benign
# race); the suite turns warnings into errors, which would stop the activity worker.
@pytest.mark.filterwarnings("ignore:Cannot find activity to cancel:UserWarning")
async def test_redis_down_answers_unavailable(stacks: Stacks, data_dir: Path) -> None:
    """With the lease store stopped the update answers `unavailable` in ~3 s, course untouched."""
    port = embedded.free_port()
    redis = embedded.start_redis_server(data_dir / f"redis-{port}", port)
    try:
        async with stacks.open(REDIS_URL=f"redis://127.0.0.1:{port}/0") as stack:
            course = await stack.create_course()
            redis.kill()
            redis.wait()
            began = time.monotonic()
            result, handle = await stack.start(course)
            elapsed = time.monotonic() - began
            assert result.decision == "unavailable"
            assert 2.5 <= elapsed <= 6, elapsed
            assert (await handle.result()).outcome == "unavailable"
            row = await stack.repository.get_course(course.course_id)
            assert row is not None
            assert (row.generation_status, row.run_id) == (None, None)
    finally:
        embedded.stop_process(redis)
