"""The activities of one run, bound to its ids and its time budget: what the workflow calls.

Builds each activity's input from the run's identity, gives course writes and lease releases
their retry budgets (course writes `PROGRESS_RETRY_SECONDS`; the finish and the release until
the execution timeout), records the metric an activity failure calls for (`worker_timeout`,
`rpc_retry_exhausted`) and leaves the orchestration to the workflow. Workflow-side only: every
method must be awaited from workflow code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import calls, failures
from workflows.failures import Ending
from workflows.steps import Step, holds
from workflows.types import CourseGenerationInput, StageInput, StageOutput

if TYPE_CHECKING:
    from datetime import datetime

with workflow.unsafe.imports_passed_through():
    from activities.types import (
        ClaimCourseInput,
        ClaimCourseResult,
        FinishGenerationInput,
        LoadedCourse,
        RecordMetricInput,
        ReleaseLeaseInput,
        ReserveLeaseInput,
        ReserveLeaseResult,
        RunOptions,
        StepWrite,
        UpdateProgressInput,
    )

Metadata = dict[str, Any]
Write = tuple[Step, str, Metadata]  # a step, its new status, metadata for the step
_SLACK = timedelta(seconds=5)  # what the run keeps back from its execution timeout


class RunActivities:
    """Activity calls for the run `run_id` of `inp.course_id`, admitted at `tier`."""

    def __init__(self, inp: CourseGenerationInput, tier: str) -> None:
        info = workflow.info()
        self.course_id, self.user_id, self.tier = inp.course_id, inp.user_id, tier
        self.workflow_id, self.run_id = info.workflow_id, info.run_id
        self.webhook_url = inp.webhook_url
        self.started_at = info.workflow_start_time
        self.timeout = info.execution_timeout
        self.options: RunOptions | None = None  # the worker's, from the claim

    def time_left(self) -> timedelta | None:
        """Until the execution timeout, less a little slack; None without a timeout."""
        if self.timeout is None:
            return None
        left = self.started_at + self.timeout - workflow.now() - _SLACK
        return max(left, timedelta(seconds=1))

    def deadline(self) -> datetime | None:
        """When the run fails itself: `RUN_DEADLINE_MARGIN_SECONDS` before its timeout."""
        if self.timeout is None or self.options is None:
            return None
        margin = timedelta(seconds=self.options.deadline_margin_seconds)
        return self.started_at + max(self.timeout - margin, self.timeout / 2)

    async def reserve(self) -> ReserveLeaseResult | None:
        """The lease decision, or None when the lease store did not answer in time."""
        ttl = self.timeout.total_seconds() if self.timeout else None
        inp = ReserveLeaseInput(
            self.user_id, self.tier, self.workflow_id, self.run_id, self._started, ttl
        )
        return await calls.reserve_lease(inp)

    async def claim(self) -> ClaimCourseResult:
        inp = ClaimCourseInput(
            self.course_id, self.workflow_id, self.run_id, self._started, self.webhook_url
        )
        claim = await calls.claim_course(inp)
        self.options = claim.course.options
        return claim

    async def progress(self, writes: list[Write], *, release: bool = False) -> bool:
        """Write each (step, status, metadata) in order, in one local activity; with `release`
        (the run's last write) the lease is freed in it too. True once the lease is freed."""
        steps = [_step_write(*w) for w in writes]
        freed = ReleaseLeaseInput(self.user_id, self.workflow_id, self.run_id) if release else None
        inp = UpdateProgressInput(self.course_id, self.run_id, steps, freed)
        assert self.options is not None, "progress is written after the claim"
        try:
            return await calls.update_progress(
                inp, timedelta(seconds=self.options.progress_retry_seconds)
            )
        except ActivityError as exc:
            if failures.retries_exhausted(exc):
                step_ids = [write.step_id for write in inp.writes]
                metadata = {"step_id": step_ids[-1], "step_ids": step_ids}
                await self.metric("rpc_retry_exhausted", "error", metadata)
            raise

    def stage_input(self, step: Step, course: LoadedCourse) -> StageInput:
        return StageInput(
            course_id=self.course_id,
            user_id=self.user_id,
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            generation_type=course.generation_type,
            step_id=step.id,
            course=course.brief,
            simulation=course.simulation,
        )

    @staticmethod
    async def hold(knob: str, step: Step, course: LoadedCourse) -> None:
        """SIMULATION knobs `hold_before_step` / `hold_after_step`: park the run for
        `hold_seconds` before the step starts or after it is written `completed`."""
        if holds(course.simulation, knob, step.id):
            hold_for = failures.seconds(course.simulation.get("hold_seconds"))
            await workflow.sleep(timedelta(seconds=hold_for), summary="simulation hold")

    async def stage(self, step: Step, course: LoadedCourse) -> StageOutput:
        """The step's stage activity; a timeout also records `worker_timeout`."""
        assert step.stage is not None
        try:
            return await calls.run_stage(step.stage, self.stage_input(step, course), course.options)
        except ActivityError as exc:
            if failures.timed_out(exc):
                await self.metric("worker_timeout", "error", {"stage": step.stage})
            raise

    async def cleanup(self, name: str, step: Step, course: LoadedCourse) -> None:
        """Best effort, within what the finish and the release may still need."""
        budget = self.time_left()
        if budget is not None:
            budget -= timedelta(seconds=course.options.progress_retry_seconds) + _SLACK
            if budget <= timedelta(0):
                raise RuntimeError(f"{name} skipped: no time left before the run's timeout")
        within = budget if budget is not None else timedelta(minutes=5)
        assert step.stage is not None
        await calls.run_cleanup(step.stage, self.stage_input(step, course), course.options, within)

    async def finish(self, end: Ending) -> None:
        inp = FinishGenerationInput(
            self.course_id, self.run_id, end.outcome, end.message, end.details
        )
        await calls.finish_generation(inp, self.time_left())

    async def release(self, within: timedelta | None = None, *, local: bool = True) -> None:
        """Free this run's lease (never a newer run's), retried until it takes effect or
        `within` runs out (default: until the run's timeout)."""
        inp = ReleaseLeaseInput(self.user_id, self.workflow_id, self.run_id)
        await calls.release_lease(inp, within or self.time_left(), local=local)

    async def release_quietly(self, within: timedelta | None, *, local: bool = True) -> None:
        """`release` for at most `within`; a failure is logged, the lease expires with its ttl."""
        await calls.best_effort(
            self.release(within, local=local), "lease release failed; it expires with its ttl"
        )

    async def metric(self, event: str, severity: str, metadata: Metadata) -> None:
        inp = RecordMetricInput(
            event_type=event,
            severity=severity,
            user_id=self.user_id,
            course_id=self.course_id,
            job_id=self.workflow_id,
            metadata={"tier": self.tier, **metadata},
        )
        await calls.best_effort(calls.record_metric(inp), f"metric {event} not recorded")

    @property
    def _started(self) -> str:
        return self.started_at.isoformat()


def _step_write(step: Step, status: str, metadata: Metadata) -> StepWrite:
    message = step.started if status == "in_progress" else step.done
    return StepWrite(step.id, status, message, metadata=metadata)
