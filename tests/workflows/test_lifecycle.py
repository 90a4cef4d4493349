"""The run lifecycle rules: compensations finish whatever cancels arrive, completion wins, the
run fails itself before its timeout, course writes outlast an outage, a superseded run leaves
the newer one alone, duplicate starts are bounded, and a lease lives as long as its run."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError

from admission import RunRef
from db.repository import CourseRepository, DatabaseUnavailable
from tests.helpers import eventually
from tests.workflows.support import Stack, Stacks, assert_stage
from tiers import parse_tier
from workflows import errors
from workflows.course_generation import REPEATS_ANSWERED


class HeldFinish(CourseRepository):
    """A repository whose `finish_course_generation` waits until the test lets it through."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def finish_generation(self, *args: Any, **kw: Any) -> Any:
        self.entered.set()
        await self.release.wait()
        return await super().finish_generation(*args, **kw)


class Outage(CourseRepository):
    """A repository whose progress writes fail as a lost connection until `until` (monotonic)."""

    def __init__(self, pool: asyncpg.Pool, seconds: float) -> None:
        super().__init__(pool)
        self.until = time.monotonic() + seconds
        self.refused = 0

    async def update_progress_steps(self, course_id: str, writes: Any) -> Any:
        if any(w["step_id"] == 2 for w in writes) and time.monotonic() < self.until:
            self.refused += 1
            raise DatabaseUnavailable("connection lost (injected outage)")
        return await super().update_progress_steps(course_id, writes)


async def row_status(stack: Stack, course_id: str) -> str | None:
    row = await stack.repository.get_course(course_id)
    assert row is not None
    return row.generation_status


async def test_compensations_finish_through_two_cancels(
    stacks: Stacks, pg_pool: asyncpg.Pool
) -> None:
    """A run failing at step 3 whose finish is held gets two cancels while compensating: the
    row still ends `failed`, the lease is released, one `job_rollback`, Temporal FAILED."""
    held = HeldFinish(pg_pool)
    async with stacks.open(repository=held) as stack:
        course = await stack.create_course(simulation={"fail_at_step": 3})
        _, handle = await stack.start(course)
        await asyncio.wait_for(held.entered.wait(), timeout=15)
        await handle.cancel()
        await asyncio.sleep(0.5)
        await handle.cancel()
        await asyncio.sleep(0.5)
        held.release.set()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
        assert await row_status(stack, course.course_id) == "failed"
        assert await stack.leases.usage(course.user_id) == []
        rollbacks = await stack.metrics(course.course_id, "job_rollback")
        assert [r["metadata"]["outcome"] for r in rollbacks] == ["failed"]
        assert rollbacks[0]["metadata"]["failed_compensations"] == []


async def test_completion_wins_over_a_cancel_after_step_five(stack: Stack) -> None:
    """A cancel arriving once step 5 is written `completed` is ignored: COMPLETED, row
    `completed`, no `job_rollback`."""
    course = await stack.create_course(simulation={"hold_after_step": 5, "hold_seconds": 2})
    _, handle = await stack.start(course)

    async def completed_row() -> None:
        assert await row_status(stack, course.course_id) == "completed"

    await eventually(completed_row)
    await handle.cancel()
    outcome = await handle.result()
    assert outcome.outcome == "completed"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert await row_status(stack, course.course_id) == "completed"
    assert await stack.metrics(course.course_id, "job_rollback") == []
    assert await stack.leases.usage(course.user_id) == []


async def test_the_run_fails_itself_before_its_execution_timeout(stacks: Stacks) -> None:
    """With a 60 s timeout and a 20 s margin, a run stuck in a long stage fails by itself at
    about 40 s: FAILED (not TIMED_OUT), row `failed` "generation timed out", lease released,
    `worker_timeout` and `job_rollback` recorded."""
    async with stacks.open(
        WORKFLOW_EXECUTION_TIMEOUT_SECONDS="60",
        RUN_DEADLINE_MARGIN_SECONDS="20",
        PROGRESS_RETRY_SECONDS="5",
    ) as stack:
        course = await stack.create_course(simulation={"hold_at_step": 2, "hold_seconds": 300})
        started = time.monotonic()
        _, handle = await stack.start(course)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        assert time.monotonic() - started < 58
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == errors.RUN_DEADLINE_EXCEEDED
        assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
        row = await stack.repository.get_course(course.course_id)
        assert row is not None
        assert (row.generation_status, row.error_message) == ("failed", "generation timed out")
        assert await stack.leases.usage(course.user_id) == []
        assert len(await stack.metrics(course.course_id, "worker_timeout")) == 1
        assert len(await stack.metrics(course.course_id, "job_rollback")) == 1


async def test_progress_writes_outlast_a_thirty_second_outage(
    stacks: Stacks, pg_pool: asyncpg.Pool
) -> None:
    """Progress writes failing for 30 s (longer than any count-based budget) and then
    succeeding: the run completes."""
    outage = Outage(pg_pool, seconds=30)
    async with stacks.open(repository=outage) as stack:
        course = await stack.create_course()
        _, handle = await stack.start(course)
        outcome = await handle.result()
        assert outcome.outcome == "completed"
        assert outage.refused > 1
        assert await row_status(stack, course.course_id) == "completed"
        assert await stack.metrics(course.course_id, "rpc_retry_exhausted") == []


async def test_a_superseded_run_leaves_the_newer_run_alone(stack: Stack) -> None:
    """A newer run claims the course and its lease while the old one is in a stage: the old
    run ends `superseded` and neither the row nor the newer run's lease is touched."""
    course = await stack.create_course(simulation={"hold_at_step": 2, "hold_seconds": 2})
    _, handle = await stack.start(course)
    await eventually(lambda: assert_stage(handle, "structure_analysis"))
    newer, later = f"newer-{uuid.uuid4().hex[:8]}", datetime.now(UTC) + timedelta(seconds=1)
    claim = stack.repository.begin_generation(
        course.course_id, handle.id, newer, "STRUCTURE_ANALYSIS", later
    )
    assert await claim is not None
    limit = stack.settings.admission.policy(parse_tier(course.tier)[0]).limit
    ref = RunRef(newer, later.timestamp())
    taken = await stack.leases.reserve(course.user_id, limit, 10_000, handle.id, 3600, ref)
    assert taken.decision == "admitted"
    outcome = await handle.result()
    assert outcome.outcome == "superseded"
    row = await stack.repository.get_course(course.course_id)
    assert row is not None
    assert (row.run_id, row.generation_status) == (newer, "pending")
    assert [h.run_id for h in await stack.leases.holders() if h.holder == handle.id] == [newer]
    assert await stack.metrics(course.course_id, "job_rollback") == []


async def test_duplicate_starts_are_bounded(stack: Stack) -> None:
    """Repeats of an answered start: the first few are answered by the update, later ones by
    its validator (no history): the run's history grows by at most 5 events per accepted
    repeat (a workflow task and the update's two events) plus one metric activity and a little
    slack, whatever a client re-sends, and `duplicate_job_detected` is recorded once a minute."""
    knobs = {"hold_at_step": 2, "hold_seconds": 4}
    _, plain_handle = await stack.start(await stack.create_course(simulation=knobs))
    course = await stack.create_course(simulation=knobs)
    first, handle = await stack.start(course)
    answers: list[str] = []
    for _ in range(30):
        try:
            again, _ = await stack.start(course)
            answers.append(again.decision)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            assert isinstance(cause, ApplicationError)
            assert cause.type == errors.DUPLICATE_START
            assert cause.details[0]["run_id"] == first.run_id
            answers.append("validator")
    assert answers[:REPEATS_ANSWERED] == ["admitted"] * REPEATS_ANSWERED
    assert set(answers[REPEATS_ANSWERED:]) == {"validator"}
    await handle.result()
    await plain_handle.result()
    base = len((await plain_handle.fetch_history()).events)
    # the metric activity (its three events and its task's three), and room for a workflow
    # task or two that a repeat landing during a local activity splits off
    slack = 6 + 6
    bound = base + 5 * REPEATS_ANSWERED + slack
    assert len((await handle.fetch_history()).events) <= bound
    assert len(await stack.metrics(course.course_id, "duplicate_job_detected")) == 1


async def test_the_lease_lives_as_long_as_its_run(stack: Stack) -> None:
    """The lease's ttl is the run's own execution timeout, not the worker's setting."""
    course = await stack.create_course(simulation={"hold_at_step": 2, "hold_seconds": 3})
    _, handle = await stack.start(course, execution_timeout=900)
    (lease,) = await stack.leases.usage(course.user_id)
    assert 880 <= lease.expires_at - time.time() <= 900
    assert stack.settings.workflow.execution_timeout_seconds != 900
    await handle.result()
