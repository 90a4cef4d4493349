"""The activities of one run, bound to its ids: what the workflow class calls.

Builds each activity's input from the run's identity, records the metric an activity failure
calls for (`worker_timeout`, `rpc_retry_exhausted`) and leaves the orchestration to the
workflow. Workflow-side only: every method must be awaited from workflow code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import calls, failures
from workflows.failures import Ending
from workflows.steps import Step
from workflows.types import CourseGenerationInput, StageInput, StageOutput

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
        UpdateProgressInput,
    )

Metadata = dict[str, Any]


class RunActivities:
    """Activity calls for the run `run_id` of `inp.course_id`, admitted at `tier`."""

    def __init__(self, inp: CourseGenerationInput, tier: str) -> None:
        info = workflow.info()
        self.course_id, self.user_id, self.tier = inp.course_id, inp.user_id, tier
        self.workflow_id, self.run_id = info.workflow_id, info.run_id
        self.webhook_url = inp.webhook_url

    async def reserve(self) -> ReserveLeaseResult | None:
        """The lease decision, or None when the lease store did not answer in time."""
        return await calls.reserve_lease(
            ReserveLeaseInput(self.user_id, self.tier, self.workflow_id)
        )

    async def claim(self) -> ClaimCourseResult:
        return await calls.claim_course(
            ClaimCourseInput(self.course_id, self.workflow_id, self.run_id, self.webhook_url)
        )

    async def progress(self, step: Step, status: str, metadata: Metadata | None = None) -> None:
        message = step.started if status == "in_progress" else step.done
        inp = UpdateProgressInput(
            self.course_id, self.run_id, step.id, status, message, metadata=metadata or {}
        )
        try:
            await calls.update_progress(inp)
        except ActivityError as exc:
            if failures.retries_exhausted(exc):
                await self.metric("rpc_retry_exhausted", "error", {"step_id": step.id})
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
    async def hold_before(step: Step, course: LoadedCourse) -> None:
        """SIMULATION knob `hold_before_step`: park the run between two steps."""
        if course.simulation.get("hold_before_step") == step.id:
            hold_for = failures.seconds(course.simulation.get("hold_seconds"))
            await workflow.sleep(timedelta(seconds=hold_for), summary="simulation hold")

    async def stage(self, step: Step, course: LoadedCourse) -> StageOutput:
        """The step's stage activity; a timeout also records `worker_timeout`."""
        assert step.stage is not None
        try:
            return await calls.run_stage(step.stage, self.stage_input(step, course), course.stages)
        except ActivityError as exc:
            if failures.timed_out(exc):
                await self.metric("worker_timeout", "error", {"stage": step.stage})
            raise

    async def cleanup(self, name: str, step: Step, course: LoadedCourse) -> None:
        await calls.run_cleanup(name, self.stage_input(step, course), course.stages)

    async def finish(self, end: Ending) -> None:
        await calls.finish_generation(
            FinishGenerationInput(
                self.course_id, self.run_id, end.outcome, end.message, end.details
            )
        )

    async def release(self, attempts: int = 10) -> None:
        await calls.release_lease(ReleaseLeaseInput(self.user_id, self.workflow_id), attempts)

    async def release_quietly(self, attempts: int) -> None:
        await calls.best_effort(
            self.release(attempts), "lease release failed; it expires with its ttl"
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
