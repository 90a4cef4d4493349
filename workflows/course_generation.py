"""`CourseGenerationWorkflow`: one durable course generation. Deterministic only."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import Any

from temporalio import workflow
from temporalio.exceptions import is_cancelled_exception

from workflows import failures
from workflows import search_attributes as sa
from workflows.failures import Ending
from workflows.progress import RunProgress, RunState, admission_result
from workflows.run_activities import RunActivities
from workflows.saga import Saga
from workflows.steps import CANCELLED_MESSAGE, Step, cleanup_name, stage_steps, steps_for
from workflows.types import (
    AdmissionRequest,
    AdmissionResult,
    CourseGenerationInput,
    Decision,
    GenerationOutcome,
    GenerationType,
)

with workflow.unsafe.imports_passed_through():
    from activities.types import LoadedCourse, ReserveLeaseResult
    from tiers import parse_tier
    from workflows.errors import course_not_found


@workflow.defn
class CourseGenerationWorkflow:
    """One course generation run, id `course-generation-<courseId>`.

    Input `CourseGenerationInput`. Update `admission(AdmissionRequest) -> AdmissionResult`
    answers once the lease is reserved and the course claimed, or the run was refused
    (`rejected`, `unavailable`) or is compensating (`closing`); `new_run` says whether the
    request's start token started this run. Query `progress`. On failure or cancellation the
    saga undoes, newest first, the stage cleanups, the course (`failed`/`cancelled`) and the
    lease, records one `job_rollback` and re-raises, so Temporal shows FAILED or CANCELED. A
    course deleted under the run ends it as `course_deleted` after releasing the lease.
    """

    @workflow.init
    def __init__(self, inp: CourseGenerationInput) -> None:
        self._input = inp
        self._run = RunActivities(inp, parse_tier(inp.tier)[0].value)
        self._state = RunState()
        self._deleted = False
        self._ending = Ending()
        self._background: list[asyncio.Task[None]] = []

    @workflow.run
    async def run(self, inp: CourseGenerationInput) -> GenerationOutcome:
        saga = Saga()
        try:
            outcome = await self._generate(saga)
        except (Exception, asyncio.CancelledError) as exc:  # not GeneratorExit: eviction
            if not failures.is_course_deleted(exc):
                await self._roll_back(saga, exc)
                await self._settle()
                raise
            outcome = await self._course_deleted()
        await self._settle()
        return outcome

    @workflow.update
    async def admission(self, request: AdmissionRequest) -> AdmissionResult:
        await workflow.wait_condition(lambda: self._state.admission is not None or self._deleted)
        admission = self._state.admission
        if admission is None:
            raise course_not_found(self._input.course_id)
        new_run = request.start_token == self._input.start_token
        if not new_run and self._state.phase != "running":
            return dataclasses.replace(admission, decision="closing")
        if not new_run and admission.decision == "admitted":
            metadata = {"run_id": self._run.run_id}
            self._spawn(self._run.metric("duplicate_job_detected", "info", metadata))
        return dataclasses.replace(admission, new_run=new_run)

    @workflow.query
    def progress(self) -> RunProgress:
        return self._state.snapshot()

    async def _generate(self, saga: Saga) -> GenerationOutcome:
        saga.add("release_lease", self._run.release)
        reserved = await self._run.reserve()
        if reserved is None or reserved.decision != "admitted":
            return await self._refused(reserved)
        saga.add("finish_generation", lambda: self._run.finish(self._ending))
        claim = await self._run.claim()
        self._admitted(reserved, claim.generation_type)
        await self._progress(steps_for(claim.generation_type)[0], "completed")
        for step in stage_steps(claim.generation_type):
            await self._run_step(saga, step, claim.course)
        self._state.phase = "closing"
        self._state.set_status("completed")
        await self._run.release_quietly(attempts=10)
        return GenerationOutcome("completed", generation_type=claim.generation_type)

    async def _refused(self, reserved: ReserveLeaseResult | None) -> GenerationOutcome:
        if reserved is None:
            self._state.admission = self._result("unavailable")
            await self._run.release_quietly(attempts=3)  # a reserve that timed out may have landed
            return GenerationOutcome("unavailable")
        self._state.admission = self._result("rejected", reserved)
        self._state.set_status("rejected")
        metadata: dict[str, Any] = {"reason": reserved.reason, "limit": reserved.limit}
        metadata["holders"] = [h.workflow_id for h in reserved.holders]
        await self._run.metric("concurrency_limit_hit", "warn", metadata)
        return GenerationOutcome("rejected", reason=reserved.reason)

    def _admitted(self, reserved: ReserveLeaseResult, generation_type: GenerationType) -> None:
        self._state.admission = self._result("admitted", reserved, generation_type)
        self._state.phase = "running"
        self._state.step = steps_for(generation_type)[0]
        self._state.step_status = "in_progress"
        workflow.upsert_search_attributes([sa.GENERATION_TYPE.value_set(generation_type)])
        self._state.set_status("initializing")

    async def _run_step(self, saga: Saga, step: Step, course: LoadedCourse) -> None:
        assert step.stage is not None
        await self._run.hold_before(step, course)
        if step.stage in course.stages.cleanup_stages:
            name = cleanup_name(step.stage)
            saga.add(name, lambda: self._run.cleanup(name, step, course))
        await self._progress(step, "in_progress")
        output = await self._run.stage(step, course)
        self._raise_if_cancel_requested()
        await self._progress(step, "completed", {"stage": step.stage, "summary": output.summary})

    async def _progress(
        self, step: Step, status: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self._state.step, self._state.step_status = step, status
        if status == "in_progress":
            self._state.set_status(step.status)
        await self._run.progress(step, status, metadata)
        self._raise_if_cancel_requested()

    @staticmethod
    def _raise_if_cancel_requested() -> None:
        """A cancel is delivered once: an activity that completes anyway (a stage ending before
        its next heartbeat) swallows it, so the run checks for it after each forward step."""
        if workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError("cancel requested")

    async def _roll_back(self, saga: Saga, exc: BaseException) -> None:
        cancelled = is_cancelled_exception(exc)
        self._state.phase = "closing"
        if self._state.admission is None:
            self._state.admission = self._result("closing" if cancelled else "unavailable")
        message, details = failures.describe(exc)
        if cancelled:
            message, details = workflow.cancellation_reason() or CANCELLED_MESSAGE, {}
        step = self._state.step.id if self._state.step else None
        outcome = "cancelled" if cancelled else "failed"
        self._ending = Ending(outcome, message, {**details, "step_id": step})
        report = await saga.compensate()
        self._state.set_status(outcome)
        metadata = {"outcome": outcome, "undone": report.undone, "failed_step": step}
        metadata |= {"failed_compensations": report.failed, "reason": message}
        await self._run.metric("job_rollback", "warn" if cancelled else "error", metadata)

    async def _course_deleted(self) -> GenerationOutcome:
        self._deleted, self._state.phase = True, "closing"
        await self._run.release_quietly(attempts=10)
        return GenerationOutcome("course_deleted", generation_type=self._state.generation_type)

    def _result(
        self,
        decision: Decision,
        reserved: ReserveLeaseResult | None = None,
        generation_type: GenerationType | None = None,
    ) -> AdmissionResult:
        ids = (self._run.workflow_id, self._run.run_id)
        return admission_result(decision, self._run.tier, ids, generation_type, reserved)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._background.append(asyncio.create_task(work))

    async def _settle(self) -> None:
        """Wait for update handlers and their metrics before the run closes."""
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and all(t.done() for t in self._background)
        )
