"""Every activity call the workflow makes, by name, with its timeouts and retry policy.

Workflow-side only: these functions must be awaited from workflow code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows import failures

with workflow.unsafe.imports_passed_through():
    from activities import types as act
    from activities.types import (
        ClaimCourseInput,
        ClaimCourseResult,
        FinishGenerationInput,
        RecordMetricInput,
        ReleaseLeaseInput,
        ReserveLeaseInput,
        ReserveLeaseResult,
        RunOptions,
        UpdateProgressInput,
    )
    from workflows import errors
    from workflows.steps import STAGE_STEPS, cleanup_name, stage_queue
    from workflows.types import StageInput, StageOutput

_FINAL = [
    errors.INVALID_TRANSITION,
    errors.COURSE_NOT_FOUND,
    errors.INVALID_INPUT,
    errors.STALE_RUN,
]
RESERVE_TIMEOUT = timedelta(seconds=3)
_QUICK_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2,
    maximum_interval=timedelta(seconds=1),
    non_retryable_error_types=_FINAL,
)
# Course writes and lease releases retry by time, not by count: until the caller's budget
# (`schedule_to_close`) runs out, so an outage shorter than the budget costs nothing.
UNTIL_DONE = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=0,
    non_retryable_error_types=_FINAL,
)
_METRIC_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=5), maximum_attempts=5)
STAGE_RETRY = {
    step.stage: RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=step.attempts,
        non_retryable_error_types=[errors.STAGE_FAILED, errors.INVALID_INPUT],
    )
    for step in STAGE_STEPS
    if step.stage
}
_SECONDS_10 = timedelta(seconds=10)
# Local activities retry inside the workflow task up to this backoff; longer waits (an outage)
# go through durable timers, so a worker restart mid-outage loses nothing.
_LOCAL_RETRY_THRESHOLD = timedelta(seconds=2)
T = TypeVar("T")


async def best_effort(call: Awaitable[T], what: str) -> T | None:
    """`call`'s result, or None (logged as `what`) when the activity failed for good; a
    cancellation and a stale run still propagate."""
    try:
        return await call
    except ActivityError as exc:
        if is_cancelled_exception(exc) or failures.is_stale_run(exc):
            raise
        workflow.logger.warning("%s: %s", what, exc.cause or exc)
        return None


async def shielded(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` to its end whatever cancels reach the caller meanwhile.

    A workflow cancel is delivered once, to whatever the run awaits at that moment; awaiting
    through `asyncio.shield` keeps it away from `work`, and awaiting again after catching it
    keeps the run from closing before `work` has finished.
    """
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                return task.result()


async def reserve_lease(inp: ReserveLeaseInput) -> ReserveLeaseResult | None:
    """The lease decision, or None when the lease store did not answer within 3 s.

    Retries back off through workflow timers (`local_retry_threshold` below the first interval)
    so each attempt ends its workflow task and the 3 s schedule-to-close is enforced; retried
    inside one workflow task they were seen to outlive it.
    """
    reserve = workflow.execute_local_activity(
        act.RESERVE_LEASE,
        inp,
        result_type=ReserveLeaseResult,
        schedule_to_close_timeout=RESERVE_TIMEOUT,
        start_to_close_timeout=timedelta(milliseconds=1500),
        retry_policy=_QUICK_RETRY,
        local_retry_threshold=timedelta(milliseconds=1),
    )
    return await best_effort(reserve, "lease store unavailable")


async def release_lease(
    inp: ReleaseLeaseInput, within: timedelta | None, *, local: bool = True
) -> None:
    """Retried until it takes effect or `within` (None: no limit) runs out; a local activity
    unless `local` is false (a local activity holds back what the run answers meanwhile)."""
    if not local:
        await workflow.execute_activity(
            act.RELEASE_LEASE,
            inp,
            start_to_close_timeout=timedelta(seconds=5),
            schedule_to_close_timeout=within,
            retry_policy=UNTIL_DONE,
        )
        return
    await workflow.execute_local_activity(
        act.RELEASE_LEASE,
        inp,
        start_to_close_timeout=timedelta(seconds=5),
        schedule_to_close_timeout=within,
        retry_policy=UNTIL_DONE,
        local_retry_threshold=_LOCAL_RETRY_THRESHOLD,
    )


async def claim_course(inp: ClaimCourseInput) -> ClaimCourseResult:
    """The claim, or an `ActivityError` once PostgreSQL failed it for 5 s (retries back off
    through workflow timers, as the reserve's do, so the 5 s are enforced)."""
    claim: ClaimCourseResult = await workflow.execute_local_activity(
        act.CLAIM_COURSE,
        inp,
        result_type=ClaimCourseResult,
        schedule_to_close_timeout=timedelta(seconds=5),
        start_to_close_timeout=timedelta(seconds=2),
        retry_policy=_QUICK_RETRY,
        local_retry_threshold=timedelta(milliseconds=1),
    )
    return claim


async def update_progress(inp: UpdateProgressInput, within: timedelta) -> bool:
    """A local activity (one marker event, no task round trip) retried for `within`
    (`PROGRESS_RETRY_SECONDS`), then the run fails. True when it also released the lease."""
    released: bool = await workflow.execute_local_activity(
        act.UPDATE_PROGRESS,
        inp,
        result_type=bool,
        start_to_close_timeout=_SECONDS_10,
        schedule_to_close_timeout=within,
        retry_policy=UNTIL_DONE,
        local_retry_threshold=_LOCAL_RETRY_THRESHOLD,
    )
    return released


async def finish_generation(inp: FinishGenerationInput, within: timedelta | None) -> None:
    """Retried until it takes effect or `within` (None: no limit) runs out."""
    await workflow.execute_activity(
        act.FINISH_GENERATION,
        inp,
        start_to_close_timeout=_SECONDS_10,
        schedule_to_close_timeout=within,
        retry_policy=UNTIL_DONE,
    )


async def record_metric(inp: RecordMetricInput) -> None:
    await workflow.execute_activity(
        act.RECORD_METRIC,
        inp,
        start_to_close_timeout=_SECONDS_10,
        retry_policy=_METRIC_RETRY,
    )


async def run_stage(stage: str, inp: StageInput, options: RunOptions) -> StageOutput:
    """A stage on its own queue: no schedule-to-start/close timeout, so a backlog is a queue."""
    output: StageOutput = await workflow.execute_activity(
        stage,
        inp,
        result_type=StageOutput,
        task_queue=stage_queue(options.task_queue, stage),
        start_to_close_timeout=timedelta(seconds=options.start_to_close_seconds),
        heartbeat_timeout=timedelta(seconds=options.heartbeat_timeout_seconds),
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        retry_policy=STAGE_RETRY[stage],
        summary=stage,
    )
    return output


async def run_cleanup(stage: str, inp: StageInput, options: RunOptions, within: timedelta) -> None:
    """`<stage>_cleanup` on the stage's queue, best effort within `within`; priority 1, so it
    never queues behind forward work."""
    await workflow.execute_activity(
        cleanup_name(stage),
        inp,
        task_queue=stage_queue(options.task_queue, stage),
        schedule_to_close_timeout=min(within, timedelta(minutes=5)),
        retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
        priority=Priority(priority_key=1),
    )
