"""How a run ends when its forward work stops early: the saga, a deleted course, a newer run,
its own deadline. Everything here runs shielded from cancellation (see `calls.shielded`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception

from workflows import errors, failures
from workflows.failures import Ending
from workflows.progress import RunState, admission_result
from workflows.run_activities import RunActivities
from workflows.saga import Saga
from workflows.steps import CANCELLED_MESSAGE
from workflows.types import AdmissionResult, Decision, GenerationOutcome


class Closing:
    """The end of a run other than completion; `after` returns the outcome or re-raises."""

    def __init__(self, run: RunActivities, state: RunState) -> None:
        self._run, self._state = run, state
        self._ending = Ending()
        self._timed_out = False
        self.deleted = False
        self._background: list[asyncio.Task[None]] = []
        self._watcher: asyncio.Task[None] | None = None

    async def after(self, saga: Saga, exc: BaseException) -> GenerationOutcome:
        """Undo what `exc` interrupted, wait for handlers, then answer or re-raise."""
        if self._watcher is not None:
            self._watcher.cancel()
        if failures.is_course_deleted(exc):
            outcome = await self._course_deleted()
        elif failures.is_stale_run(exc):
            outcome = await self._superseded()
        else:
            await self._roll_back(saga, exc)
            await self.settle()
            if self._timed_out:
                raise ApplicationError(
                    errors.TIMED_OUT_MESSAGE, type=errors.RUN_DEADLINE_EXCEEDED, non_retryable=True
                ) from exc
            raise exc
        await self.settle()
        return outcome

    async def finish(self) -> None:
        """The saga's course undo: `finish_course_generation` with the run's ending."""
        await self._run.finish(self._ending)

    def watch_deadline(
        self, forward: asyncio.Task[Any] | None, completing: Callable[[], bool]
    ) -> asyncio.Task[None]:
        """Cancel `forward` at the run's deadline unless it is completing by then."""

        async def expire() -> None:
            deadline = self._run.deadline()
            if deadline is None or forward is None:
                return
            await workflow.sleep(deadline - workflow.now(), summary="run deadline")
            if not completing():
                self._timed_out = True
                forward.cancel()

        self._watcher = asyncio.create_task(expire())
        return self._watcher

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._background.append(asyncio.create_task(work))

    async def settle(self) -> None:
        """Wait for update handlers and spawned metrics before the run closes."""
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and all(t.done() for t in self._background)
        )

    async def _roll_back(self, saga: Saga, exc: BaseException) -> None:
        cancelled = is_cancelled_exception(exc) and not self._timed_out
        outcome = "cancelled" if cancelled else "failed"
        self._state.phase = "closing"
        if self._state.admission is None:
            self._state.admission = self._refusal("closing" if cancelled else "unavailable")
            if failures.is_claim_failure(exc):  # the claim is the admission's PostgreSQL part
                self._state.admission.unavailable = "postgresql"
        message, details = failures.describe(exc)
        if cancelled:
            message, details = workflow.cancellation_reason() or CANCELLED_MESSAGE, {}
        if self._timed_out:
            message, details = errors.TIMED_OUT_MESSAGE, {"type": errors.RUN_DEADLINE_EXCEEDED}
            await self._run.metric("worker_timeout", "error", {"reason": "run deadline"})
        step = self._state.step.id if self._state.step else None
        self._ending = Ending(outcome, message, {**details, "step_id": step})
        report = await saga.compensate()
        self._state.set_status(outcome)
        metadata = {"outcome": outcome, "undone": report.undone, "failed_step": step}
        metadata |= {"failed_compensations": report.failed, "reason": message}
        await self._run.metric("job_rollback", "warn" if cancelled else "error", metadata)

    async def _course_deleted(self) -> GenerationOutcome:
        self.deleted, self._state.phase = True, "closing"
        await self._run.release_quietly(self._run.time_left())
        return GenerationOutcome("course_deleted", generation_type=self._state.generation_type)

    async def _superseded(self) -> GenerationOutcome:
        """A newer run holds the course: leave its row alone; release only our own lease."""
        self._state.phase = "closing"
        if self._state.admission is None:
            self._state.admission = self._refusal("unavailable")
        self._state.set_status("superseded")
        await self._run.release_quietly(self._run.time_left())
        return GenerationOutcome("superseded", generation_type=self._state.generation_type)

    def _refusal(self, decision: Decision) -> AdmissionResult:
        ids = (self._run.workflow_id, self._run.run_id)
        return admission_result(decision, self._run.tier, ids)
