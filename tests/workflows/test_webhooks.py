"""Runs started with a webhook: the receiver gets every step and the outcome, signed and in
order, from the dispatcher; the run itself never waits for the receiver."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError

from tests.helpers import eventually
from tests.webhook_support import (
    MASTER_SECRET,
    LoopbackOnly,
    Receiver,
    dispatcher_for,
    settle_leftovers,
)
from tests.workflows.support import Course, Stack
from webhooks.signing import user_secret


@pytest_asyncio.fixture
async def dispatching(stack: Stack, database_url: str) -> AsyncIterator[LoopbackOnly]:
    """A dispatcher draining the outbox while the test runs (delivery only to 127.0.0.1)."""
    await settle_leftovers(stack.pool)
    transport = LoopbackOnly()
    async with dispatcher_for(stack.pool, transport).running(database_url):
        yield transport
    await settle_leftovers(stack.pool)
    assert transport.beyond == []


async def delivered(receiver: Receiver, course: Course, last_type: str) -> list[dict[str, object]]:
    """The verified payloads once the one of type `last_type` arrived."""

    async def arrived() -> list[dict[str, object]]:
        events = receiver.verified(user_secret(MASTER_SECRET, course.user_id))
        assert events, "nothing delivered yet"
        assert events[-1]["type"] == last_type
        return events

    return await eventually(arrived, timeout=20)


async def test_a_run_reports_every_step_to_its_webhook(
    stack: Stack, dispatching: LoopbackOnly
) -> None:
    """Claim, each step's start and end, and `generation.completed`: signed, seq 1, 2, …,
    each carrying the run's id and the course's state at that change."""
    course = await stack.create_course()
    async with Receiver().running() as receiver:
        result, handle = await stack.start(course, webhook_url=receiver.url)
        assert (await handle.result()).outcome == "completed"
        events = await delivered(receiver, course, "generation.completed")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) == 11  # the claim, then in progress and completed for each step
    assert {e["runId"] for e in events} == {result.run_id}
    assert {e["courseId"] for e in events} == {course.course_id}
    assert [e["currentStep"] for e in events] == [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert events[0]["generationStatus"] == "pending"
    assert (events[-1]["generationStatus"], events[-1]["percentage"]) == ("completed", 100)


async def test_a_failed_run_reports_its_failure(stack: Stack, dispatching: LoopbackOnly) -> None:
    """A run failing at step 3 ends its webhook events with `generation.failed` and the error."""
    course = await stack.create_course(simulation={"fail_at_step": 3})
    async with Receiver().running() as receiver:
        _, handle = await stack.start(course, webhook_url=receiver.url)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        events = await delivered(receiver, course, "generation.failed")
    assert events[-1]["generationStatus"] == "failed"
    assert events[-1]["currentStep"] == 3
    assert events[-1]["message"]


async def test_a_hanging_receiver_does_not_slow_the_run(
    stack: Stack, dispatching: LoopbackOnly
) -> None:
    """A run whose receiver never answers completes while its delivery still hangs, about as
    fast as the same run without a webhook."""
    hooked, plain = await stack.create_course(), await stack.create_course()
    async with Receiver(hang=True).running() as receiver:
        began = time.monotonic()
        _, with_hook = await stack.start(hooked, webhook_url=receiver.url)
        await with_hook.result()
        hooked_seconds = time.monotonic() - began
        began = time.monotonic()
        _, without = await stack.start(plain)
        await without.result()
        plain_seconds = time.monotonic() - began

        async def hanging() -> None:
            assert receiver.received
            assert receiver.received[0].status is None

        await eventually(hanging)
    assert hooked_seconds < plain_seconds + 1.0, (hooked_seconds, plain_seconds)
