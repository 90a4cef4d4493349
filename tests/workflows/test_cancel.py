"""Cancellation after admission, during a stage and between steps: the saga, then CANCELED."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

import embedded
from tests.helpers import eventually
from tests.workflows.support import (
    Course,
    Stack,
    Stacks,
    assert_stage,
    cancelled_activities,
    scheduled_activities,
)
from workflows.steps import CANCELLED_MESSAGE


async def assert_cancelled(stack: Stack, course: Course, handle: WorkflowHandle[Any, Any]) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    row = await stack.repository.get_course(course.course_id)
    assert row is not None
    assert row.generation_status == "cancelled"
    assert row.error_message == CANCELLED_MESSAGE
    assert await stack.leases.usage(course.user_id) == []
    assert (await stack.statuses(course.course_id)).count("cancelled") == 1
    rollbacks = await stack.metrics(course.course_id, "job_rollback")
    assert len(rollbacks) == 1
    assert rollbacks[0]["severity"] == "warn"
    assert rollbacks[0]["metadata"]["outcome"] == "cancelled"
    activities = await scheduled_activities(handle)
    assert activities.count("finish_generation") == 1
    assert activities.count("release_lease") == 1


async def test_cancel_right_after_admission(stack: Stack) -> None:
    """A cancel sent as soon as the start is admitted leaves the course cancelled."""
    course = await stack.create_course(simulation={"stage_seconds": 0.5})
    result, handle = await stack.start(course)
    assert result.decision == "admitted"
    await handle.cancel()
    await assert_cancelled(stack, course, handle)


async def test_cancel_during_stage_with_the_cli(stack: Stack) -> None:
    """`temporal workflow cancel` during a stage: the stage sees the cancel, then the saga runs."""
    course = await stack.create_course(simulation={"hold_at_step": 3, "hold_seconds": 60})
    _, handle = await stack.start(course)
    await eventually(lambda: assert_stage(handle, "structure_generation"))
    address = stack.client.service_client.config.target_host
    process = await asyncio.create_subprocess_exec(
        str(embedded.venv_binary("temporal")),
        "workflow",
        "cancel",
        "--address",
        address,
        "--workflow-id",
        handle.id,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    await assert_cancelled(stack, course, handle)
    assert await cancelled_activities(handle) == ["structure_generation"]
    row = await stack.repository.get_course(course.course_id)
    assert row is not None
    assert row.generation_progress is not None
    step = row.generation_progress["steps"][2]
    assert step["status"] == "failed"
    assert step["error"] == CANCELLED_MESSAGE


async def test_cancel_between_steps(stack: Stack) -> None:
    """A cancel while the run waits between steps 2 and 3 undoes it before step 3 starts."""
    simulation = {"hold_before_step": 3, "hold_seconds": 60}
    course = await stack.create_course(simulation=simulation)
    _, handle = await stack.start(course)

    async def between() -> None:
        progress = await handle.query("progress")
        assert (progress["step"], progress["step_status"]) == (2, "completed")

    await eventually(between)
    await handle.cancel()
    await assert_cancelled(stack, course, handle)
    assert "structure_generation" not in await scheduled_activities(handle)


async def test_cancel_reason_is_the_message(stack: Stack) -> None:
    """A cancel carrying a reason stores that reason instead of the default message."""
    course = await stack.create_course(simulation={"hold_at_step": 2, "hold_seconds": 60})
    _, handle = await stack.start(course)
    await eventually(lambda: assert_stage(handle, "structure_analysis"))
    await handle.cancel(reason="changed my mind")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    row = await stack.repository.get_course(course.course_id)
    assert row is not None
    assert row.error_message == "changed my mind"


async def test_cancel_lands_when_the_stage_finishes_before_its_next_heartbeat(
    stacks: Stacks,
) -> None:
    """A cancel the stage never sees (heartbeats throttled past its end) still cancels the run."""
    async with stacks.open(STAGE_HEARTBEAT_TIMEOUT_SECONDS="10") as slow_heartbeats:
        course = await slow_heartbeats.create_course(simulation={"stage_seconds": 2})
        _, handle = await slow_heartbeats.start(course)
        await eventually(lambda: assert_stage(handle, "structure_analysis"))
        await handle.cancel()
        await assert_cancelled(slow_heartbeats, course, handle)
        assert "structure_generation" not in await scheduled_activities(handle)
