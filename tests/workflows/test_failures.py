"""A stage failure fails the run once: saga compensations, one job_rollback, FAILED in Temporal."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from db.repository import CourseRepository, DatabaseUnavailable
from tests.helpers import eventually
from tests.workflows.support import Stack, Stacks, scheduled_activities, scheduled_options

STAGES = {
    2: "structure_analysis",
    3: "structure_generation",
    4: "text_generation",
    5: "finalization",
}


@pytest.mark.parametrize("step", [2, 3, 4, 5])
async def test_fail_at_step_rolls_back_once(stack: Stack, step: int) -> None:
    """fail_at_step=N ends FAILED with a failed row, the lease released and one job_rollback."""
    course = await stack.create_course(simulation={"fail_at_step": step})
    _, handle = await stack.start(course)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED

    row = await stack.repository.get_course(course.course_id)
    assert row is not None
    assert row.generation_status == "failed"
    assert row.error_message == f"simulated failure at step {step} ({STAGES[step]})"
    assert row.generation_progress is not None
    assert row.generation_progress["steps"][step - 1]["status"] == "failed"
    assert await stack.leases.usage(course.user_id) == []

    statuses = await stack.statuses(course.course_id)
    assert statuses.count("failed") == 1
    assert statuses[-1] == "failed"
    activities = await scheduled_activities(handle)
    assert activities.count("release_lease") == 1
    assert activities.count("finish_generation") == 1
    assert activities.count(STAGES[step]) == 1  # non-retryable: no second attempt

    rollbacks = await stack.metrics(course.course_id, "job_rollback")
    assert len(rollbacks) == 1
    assert rollbacks[0]["severity"] == "error"
    metadata = rollbacks[0]["metadata"]
    assert metadata["outcome"] == "failed"
    assert metadata["failed_step"] == step
    assert metadata["undone"] == ["finish_generation", "release_lease"]


async def test_cleanup_compensation_runs_first_and_closing_answers(stacks: Stacks) -> None:
    """A listed stage cleanup runs first in the saga; a start while it runs answers `closing`."""
    async with stacks.open(STAGE_CLEANUP_ACTIVITIES="structure_generation") as stack:
        course = await stack.create_course(simulation={"fail_at_step": 4, "cleanup_seconds": 3})
        _, handle = await stack.start(course)

        async def compensating() -> None:
            progress = await handle.query("progress")
            assert progress["phase"] == "closing"

        await eventually(compensating)
        again, _ = await stack.start(course)
        assert again.decision == "closing"
        assert again.new_run is False
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        activities = await scheduled_activities(handle)
        undo = activities[activities.index("text_generation") + 1 :]
        assert undo[:3] == ["structure_generation_cleanup", "finish_generation", "release_lease"]
        rollbacks = await stack.metrics(course.course_id, "job_rollback")
        assert rollbacks[0]["metadata"]["undone"][0] == "structure_generation_cleanup"
        cleanup = await scheduled_options(handle, "structure_generation_cleanup")
        assert cleanup.priority.priority_key == 1  # ahead of every tier's forward work
        assert 0 < cleanup.schedule_to_close_timeout.ToSeconds() <= 300  # best effort, capped


async def test_deleted_course_completes_as_course_deleted(stack: Stack) -> None:
    """A course deleted mid-run ends the run as course_deleted, lease released, no job_rollback."""
    course = await stack.create_course(simulation={"hold_at_step": 2, "hold_seconds": 1.5})
    _, handle = await stack.start(course)
    await stack.pool.execute("DELETE FROM public.courses WHERE id = $1", course.course_id)
    outcome = await handle.result()
    assert outcome.outcome == "course_deleted"
    assert await stack.leases.usage(course.user_id) == []
    assert await stack.metrics(course.course_id, "job_rollback") == []


class FlakyProgress(CourseRepository):
    """A repository whose progress writes for one step always fail as a lost connection."""

    def __init__(self, pool: asyncpg.Pool, step: int) -> None:
        super().__init__(pool)
        self._step = step

    async def update_progress_steps(self, course_id: str, writes: Any) -> Any:
        if any(write["step_id"] == self._step for write in writes):
            raise DatabaseUnavailable("connection lost (injected)")
        return await super().update_progress_steps(course_id, writes)


async def test_progress_retries_exhausted_records_and_fails(
    stacks: Stacks, pg_pool: asyncpg.Pool
) -> None:
    """Progress writes that keep failing are retried for PROGRESS_RETRY_SECONDS, recorded as
    rpc_retry_exhausted, then fail the run."""
    flaky = FlakyProgress(pg_pool, step=3)
    async with stacks.open(repository=flaky, PROGRESS_RETRY_SECONDS="3") as st:
        course = await st.create_course()
        _, handle = await st.start(course)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        exhausted = await st.metrics(course.course_id, "rpc_retry_exhausted")
        assert [m["metadata"]["step_id"] for m in exhausted] == [3]
        # step 1 done + step 2 started, then step 2 done + step 3 started, retried until its
        # budget ran out: the attempts that waited out a backoff leave a marker each
        assert (await scheduled_activities(handle)).count("update_progress") >= 2
        row = await st.repository.get_course(course.course_id)
        assert row is not None
        assert row.generation_status == "failed"
        assert await st.leases.usage(course.user_id) == []


async def test_stage_timeout_records_worker_timeout(stacks: Stacks) -> None:
    """A stage that outlives its start-to-close on every attempt records worker_timeout, FAILED."""
    async with stacks.open(STAGE_START_TO_CLOSE_SECONDS="0.5") as st:
        course = await st.create_course(simulation={"hold_at_step": 2, "hold_seconds": 5})
        _, handle = await st.start(course)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        timeouts = await st.metrics(course.course_id, "worker_timeout")
        assert [m["metadata"]["stage"] for m in timeouts] == ["structure_analysis"]
        assert len(await st.metrics(course.course_id, "job_rollback")) == 1
