"""`CourseGenerationWorkflow`: one durable course generation. Deterministic only."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows import calls, errors, failures
from workflows import search_attributes as sa
from workflows.closing import Closing
from workflows.progress import RunProgress, RunState, admission_result
from workflows.run_activities import RunActivities, Write
from workflows.saga import Saga
from workflows.steps import Step, cleanup_name, holds, holds_between, stage_steps, steps_for
from workflows.types import (
    AdmissionRequest,
    AdmissionResult,
    CourseGenerationInput,
    Decision,
    GenerationOutcome,
    GenerationType,
)

if TYPE_CHECKING:
    from datetime import datetime

with workflow.unsafe.imports_passed_through():
    from activities.types import ClaimCourseResult, LoadedCourse, ReserveLeaseResult
    from tiers import parse_tier

REPEATS_ANSWERED = 10  # repeats of an answered start the update accepts; later ones: validator
DUPLICATE_METRIC_EVERY = timedelta(minutes=1)
QUICK_RELEASE = timedelta(seconds=10)


@workflow.defn
class CourseGenerationWorkflow:
    """One course generation run, id `course-generation-<courseId>`.

    Input `CourseGenerationInput`. Update `admission(AdmissionRequest) -> AdmissionResult`
    answers once the lease is reserved and the course claimed, or the run was refused
    (`rejected`, `unavailable`) or is compensating (`closing`); `new_run` says whether the
    request's start token started this run; past `REPEATS_ANSWERED` repeats its validator
    refuses with `DuplicateStart`. Query `progress`. On failure, cancellation or its deadline
    (`RUN_DEADLINE_MARGIN_SECONDS` before the execution timeout) the saga undoes, newest first
    and shielded from cancels, the stage cleanups, the course (`failed`/`cancelled`) and the
    lease, records one `job_rollback` and re-raises, so Temporal shows FAILED or CANCELED.
    Once step 5 is written `completed` the run completes whatever arrives. A deleted course
    ends it as `course_deleted`, a newer run holding the course as `superseded`.
    """

    @workflow.init
    def __init__(self, inp: CourseGenerationInput) -> None:
        self._input = inp
        self._run = RunActivities(inp, parse_tier(inp.tier)[0].value)
        self._state = RunState()
        self._closing = Closing(self._run, self._state)
        self._completing, self._repeats = False, 0
        self._duplicate_noted: datetime | None = None

    @workflow.run
    async def run(self, inp: CourseGenerationInput) -> GenerationOutcome:
        saga = Saga()
        forward = asyncio.create_task(self._generate(saga))
        try:
            outcome = await forward
        except (Exception, asyncio.CancelledError) as exc:  # not GeneratorExit: eviction
            return await calls.shielded(self._closing.after(saga, exc))
        await calls.shielded(self._closing.settle())
        return outcome

    @workflow.update
    async def admission(self, request: AdmissionRequest) -> AdmissionResult:
        await workflow.wait_condition(
            lambda: self._state.admission is not None or self._closing.deleted
        )
        admission = self._state.admission
        if admission is None:
            raise errors.course_not_found(self._input.course_id)
        if request.start_token == self._input.start_token:
            return dataclasses.replace(admission, new_run=True)
        self._repeats += 1
        answer = self._repeat_answer(admission)
        if answer.decision == "admitted":
            self._note_duplicate()
        return answer

    @admission.validator
    def _admission_repeats(self, request: AdmissionRequest) -> None:
        """Past `REPEATS_ANSWERED` repeats, answer without writing history (the gateway
        answers the refusal's details as the duplicate it is)."""
        admission = self._state.admission
        repeat = request.start_token != self._input.start_token
        if repeat and admission is not None and self._repeats >= REPEATS_ANSWERED:
            raise ApplicationError(
                "this start was already answered",
                dataclasses.asdict(self._repeat_answer(admission)),
                type=errors.DUPLICATE_START,
                non_retryable=True,
            )

    @workflow.query
    def progress(self) -> RunProgress:
        return self._state.snapshot()

    async def _generate(self, saga: Saga) -> GenerationOutcome:
        saga.add("release_lease", self._run.release)
        reserved = await self._run.reserve()
        if reserved is None or reserved.decision != "admitted":
            return await self._refused(reserved)
        saga.add("finish_generation", self._closing.finish)
        claim = await self._run.claim()
        self._admitted(reserved, claim)
        self._closing.watch_deadline(asyncio.current_task(), lambda: self._completing)
        done: Write = (steps_for(claim.generation_type)[0], "completed", {})
        for step in stage_steps(claim.generation_type):
            written = claim.advanced and step.id == 2  # the claim wrote steps 1 and 2 as well
            done = await self._run_step(saga, done, step, claim.course, written)
        await self._complete(done, claim.course)
        return GenerationOutcome("completed", generation_type=claim.generation_type)

    async def _refused(self, reserved: ReserveLeaseResult | None) -> GenerationOutcome:
        if reserved is None:
            self._state.admission = dataclasses.replace(
                self._result("unavailable"), unavailable="redis"
            )
            # A reserve that timed out may still land; not local, so the answer leaves first.
            await self._run.release_quietly(QUICK_RELEASE, local=False)
            return GenerationOutcome("unavailable")
        self._state.admission = self._result("rejected", reserved)
        self._state.set_status("rejected")
        holders = [h.workflow_id for h in reserved.holders]
        metadata = {"reason": reserved.reason, "limit": reserved.limit, "holders": holders}
        await self._run.metric("concurrency_limit_hit", "warn", metadata)
        return GenerationOutcome("rejected", reason=reserved.reason)

    def _admitted(self, reserved: ReserveLeaseResult, claim: ClaimCourseResult) -> None:
        """The admission, and the status the claim left the row in (one upsert with the branch)."""
        generation_type = claim.generation_type
        self._state.admission = self._result("admitted", reserved, generation_type)
        self._state.phase, self._state.step_status = "running", "in_progress"
        step = self._state.step = steps_for(generation_type)[1 if claim.advanced else 0]
        self._state.set_status(step.status, sa.GENERATION_TYPE.value_set(generation_type))

    async def _run_step(
        self, saga: Saga, done: Write, step: Step, course: LoadedCourse, written: bool
    ) -> Write:
        """Write `done` completed and `step` in progress (one write unless a simulation hold
        parks the run between them; the claim's if `written`), run the stage, return its write."""
        assert step.stage is not None
        pending = [done]
        if holds_between(course.simulation, done[0].id, step.id):  # never `written` then
            await self._write(pending)
            pending = []
            await self._run.hold("hold_after_step", done[0], course)
            await self._run.hold("hold_before_step", step, course)
        if step.stage in course.options.cleanup_stages:
            name = cleanup_name(step.stage)
            saga.add(name, lambda: self._run.cleanup(name, step, course))
        if not written:
            await self._write([*pending, (step, "in_progress", {})])
        failures.raise_if_cancel_requested()
        output = await self._run.stage(step, course)
        failures.raise_if_cancel_requested()
        return step, "completed", {"stage": step.stage, "summary": output.summary}

    async def _complete(self, done: Write, course: LoadedCourse) -> None:
        """Completion wins: once step 5 is being written `completed`, nothing undoes it. The
        write frees the lease too, unless a simulation hold comes between them."""
        self._completing = True
        self._state.step_status = "completed"
        held = holds(course.simulation, "hold_after_step", done[0].id)
        freed = await calls.shielded(self._run.progress([done], release=not held))
        await calls.shielded(self._run.hold("hold_after_step", done[0], course))
        self._state.phase = "closing"
        self._state.set_status("completed")
        if not freed:
            retry = timedelta(seconds=course.options.progress_retry_seconds)
            await calls.shielded(self._run.release_quietly(retry))

    async def _write(self, writes: list[Write]) -> None:
        """Progress writes in one activity; the run's own view follows the last one."""
        step, status, _ = writes[-1]
        self._state.step, self._state.step_status = step, status
        if status == "in_progress":
            self._state.set_status(step.status)
        await self._run.progress(writes)
        failures.raise_if_cancel_requested()

    def _repeat_answer(self, admission: AdmissionResult) -> AdmissionResult:
        """What a repeat of the start gets: a refusal as it was (429/503), `closing` while the
        run compensates or finishes, else the run's admission."""
        if admission.decision in ("rejected", "unavailable"):
            return admission
        if self._state.phase != "running":
            return dataclasses.replace(admission, decision="closing")
        return admission

    def _note_duplicate(self) -> None:
        """`duplicate_job_detected`, at most once a minute per run."""
        now = workflow.now()
        if self._duplicate_noted and now - self._duplicate_noted < DUPLICATE_METRIC_EVERY:
            return
        self._duplicate_noted = now
        metadata = {"run_id": self._run.run_id}
        self._closing.spawn(self._run.metric("duplicate_job_detected", "info", metadata))

    def _result(
        self,
        decision: Decision,
        reserved: ReserveLeaseResult | None = None,
        generation_type: GenerationType | None = None,
    ) -> AdmissionResult:
        ids = (self._run.workflow_id, self._run.run_id)
        return admission_result(decision, self._run.tier, ids, generation_type, reserved)
