"""`CourseGenerationWorkflow`: one durable course generation (DESIGN §5). Deterministic only."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

from workflows import calls, failures
from workflows import search_attributes as sa
from workflows.progress import RunProgress, admission_result
from workflows.saga import Saga
from workflows.steps import CANCELLED_MESSAGE, Step, stage_steps, steps_for
from workflows.types import (
    AdmissionRequest,
    AdmissionResult,
    CourseGenerationInput,
    Decision,
    GenerationOutcome,
    GenerationType,
    StageInput,
)

with workflow.unsafe.imports_passed_through():
    from activities.admission import ReleaseLeaseInput, ReserveLeaseInput, ReserveLeaseResult
    from activities.course import (
        ClaimCourseInput,
        FinishInput,
        LoadCourseInput,
        LoadedCourse,
        ProgressInput,
        course_not_found,
    )
    from activities.metrics import MetricInput
    from activities.stages import cleanup_name
    from tiers import parse_tier


Metadata = dict[str, Any]
Reserved = ReserveLeaseResult


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
        info = workflow.info()
        self._input = inp
        self._tier = parse_tier(inp.tier)[0].value
        self._workflow_id, self._run_id = info.workflow_id, info.run_id
        self._admission: AdmissionResult | None = None
        self._deleted = False
        self._phase = "admitting"
        self._step: Step | None = None
        self._step_status = "pending"
        self._status: str | None = None
        self._ending: tuple[str, str, Metadata] = ("failed", "", {})
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
        await workflow.wait_condition(lambda: self._admission is not None or self._deleted)
        if self._admission is None:
            raise course_not_found(self._input.course_id)
        new_run = request.start_token == self._input.start_token
        if not new_run and self._phase != "running":
            return dataclasses.replace(self._admission, decision="closing")
        if not new_run and self._admission.decision == "admitted":
            self._spawn(self._metric("duplicate_job_detected", "info", {"run_id": self._run_id}))
        return dataclasses.replace(self._admission, new_run=new_run)

    @workflow.query
    def progress(self) -> RunProgress:
        step = self._step.id if self._step else 0
        return RunProgress(
            self._phase, step, self._step_status, self._status, self._generation_type,
            self._admission,
        )  # fmt: skip

    async def _generate(self, saga: Saga) -> GenerationOutcome:
        saga.add("release_lease", self._release)
        reserved = await self._reserve()
        if reserved is None or reserved.decision != "admitted":
            return await self._refused(reserved)
        saga.add("finish_generation", self._finish)
        claim = await calls.claim_course(
            ClaimCourseInput(self._input.course_id, self._workflow_id, self._run_id)
        )
        self._admitted(reserved, claim.generation_type)
        # Replay only: claims recorded before claim_course answered the course carry None and
        # were followed by a load_course activity; new claims always carry the course.
        course = claim.course
        if course is None:
            course = await calls.load_course(LoadCourseInput(self._input.course_id))
        await self._progress(steps_for(claim.generation_type)[0], "completed")
        for step in stage_steps(claim.generation_type):
            await self._run_step(saga, step, course)
        self._phase = "closing"
        self._set_status("completed")
        await self._release_quietly(attempts=10)
        return GenerationOutcome("completed", generation_type=claim.generation_type)

    async def _reserve(self) -> Reserved | None:
        inp = ReserveLeaseInput(self._input.user_id, self._tier, self._workflow_id)
        return await calls.reserve_lease(inp)

    async def _refused(self, reserved: ReserveLeaseResult | None) -> GenerationOutcome:
        if reserved is None:
            self._admission = self._result("unavailable")
            await self._release_quietly(attempts=3)  # a reserve that timed out may have landed
            return GenerationOutcome("unavailable")
        self._admission = self._result("rejected", reserved)
        self._set_status("rejected")
        holders = [h.workflow_id for h in reserved.holders]
        metadata = {"reason": reserved.reason, "tier": reserved.tier, "limit": reserved.limit}
        await self._metric("concurrency_limit_hit", "warn", {**metadata, "holders": holders})
        return GenerationOutcome("rejected", reason=reserved.reason)

    def _admitted(self, reserved: ReserveLeaseResult, generation_type: GenerationType) -> None:
        self._admission = self._result("admitted", reserved, generation_type)
        self._phase = "running"
        self._step, self._step_status = steps_for(generation_type)[0], "in_progress"
        workflow.upsert_search_attributes([sa.GENERATION_TYPE.value_set(generation_type)])
        self._set_status("initializing")

    async def _run_step(self, saga: Saga, step: Step, course: LoadedCourse) -> None:
        assert step.stage is not None
        assert self._generation_type is not None
        hold = course.simulation.get("hold_before_step") == step.id
        if hold:  # SIMULATION knob: park the run between two steps
            hold_for = failures.seconds(course.simulation.get("hold_seconds"))
            await workflow.sleep(timedelta(seconds=hold_for), summary="simulation hold")
        stage_input = StageInput(
            self._input.course_id, self._input.user_id, self._workflow_id, self._run_id,
            self._generation_type, step.id, course.brief, course.simulation,
        )  # fmt: skip
        if step.stage in course.stages.cleanup_stages:
            name = cleanup_name(step.stage)
            saga.add(name, lambda: calls.run_cleanup(name, stage_input, course.stages))
        await self._progress(step, "in_progress")
        try:
            output = await calls.run_stage(step.stage, stage_input, course.stages)
        except ActivityError as exc:
            if failures.timed_out(exc):
                await self._metric("worker_timeout", "error", {"stage": step.stage})
            raise
        self._raise_if_cancel_requested()
        metadata = {"stage": step.stage, "summary": output.summary}
        await self._progress(step, "completed", metadata)

    async def _progress(
        self, step: Step, status: str, metadata: dict[str, Any] | None = None
    ) -> None:
        self._step, self._step_status = step, status
        if status == "in_progress":
            self._set_status(step.status)
        message = step.started if status == "in_progress" else step.done
        inp = ProgressInput(
            self._input.course_id, self._run_id, step.id, status, message, metadata=metadata or {}
        )
        try:
            await calls.update_progress(inp)
        except ActivityError as exc:
            if failures.retries_exhausted(exc):
                await self._metric("rpc_retry_exhausted", "error", {"step_id": step.id})
            raise
        self._raise_if_cancel_requested()

    @staticmethod
    def _raise_if_cancel_requested() -> None:
        """A cancel is delivered once: an activity that completes anyway (a stage ending before
        its next heartbeat) swallows it, so the run checks for it after each forward step."""
        if workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError("cancel requested")

    async def _roll_back(self, saga: Saga, exc: BaseException) -> None:
        cancelled = is_cancelled_exception(exc)
        self._phase = "closing"
        if self._admission is None:
            self._admission = self._result("closing" if cancelled else "unavailable")
        message, details = failures.describe(exc)
        if cancelled:
            message, details = workflow.cancellation_reason() or CANCELLED_MESSAGE, {}
        step = self._step.id if self._step else None
        outcome = "cancelled" if cancelled else "failed"
        self._ending = (outcome, message, {**details, "step_id": step})
        report = await saga.compensate()
        self._set_status(outcome)
        metadata: Metadata = {"outcome": outcome, "undone": report.undone, "failed_step": step}
        metadata |= {"failed_compensations": report.failed, "reason": message}
        await self._metric("job_rollback", "warn" if cancelled else "error", metadata)

    async def _course_deleted(self) -> GenerationOutcome:
        self._deleted, self._phase = True, "closing"
        await self._release_quietly(attempts=10)
        return GenerationOutcome("course_deleted", generation_type=self._generation_type)

    async def _release(self) -> None:
        await calls.release_lease(ReleaseLeaseInput(self._input.user_id, self._workflow_id))

    async def _release_quietly(self, attempts: int) -> None:
        inp = ReleaseLeaseInput(self._input.user_id, self._workflow_id)
        release = calls.release_lease(inp, attempts=attempts)
        await calls.best_effort(release, "lease release failed; it expires with its ttl")

    async def _finish(self) -> None:
        outcome, message, details = self._ending
        await calls.finish_generation(
            FinishInput(self._input.course_id, self._run_id, outcome, message, details)
        )

    async def _metric(self, event: str, severity: str, metadata: Metadata) -> None:
        inp = MetricInput(
            event, severity, self._input.user_id, self._input.course_id, self._workflow_id,
            {"tier": self._tier, **metadata},
        )  # fmt: skip
        await calls.best_effort(calls.record_metric(inp), f"metric {event} not recorded")

    def _set_status(self, status: str) -> None:
        self._status = status
        workflow.upsert_search_attributes([sa.GENERATION_STATUS.value_set(status)])
        step = f"step {self._step.id}/5 · {self._step.name}" if self._step else "admission"
        workflow.set_current_details(f"**{status}** — {step} ({self._step_status})")

    def _result(
        self,
        decision: Decision,
        reserved: Reserved | None = None,
        generation_type: GenerationType | None = None,
    ) -> AdmissionResult:
        ids = (self._workflow_id, self._run_id)
        return admission_result(decision, self._tier, ids, generation_type, reserved)

    @property
    def _generation_type(self) -> GenerationType | None:
        """The claimed branch: set on the admission once the course is claimed."""
        return self._admission.generation_type if self._admission else None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._background.append(asyncio.create_task(work))

    async def _settle(self) -> None:
        """Wait for update handlers and their metrics before the run closes."""
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and all(t.done() for t in self._background)
        )
