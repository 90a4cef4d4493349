"""Reading and cancelling the run recorded on a course, and the caller's admission usage."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from admission import Leases
from api.auth import Principal
from api.problems import NotRunning, run_problem
from api.schemas import (
    ActiveCourse,
    CancelResponse,
    ConcurrencyResponse,
    StatusResponse,
    Waiting,
    WorkflowStatusName,
)
from api.starts import Starter
from api.temporal import TemporalConnector
from api.tiers import TierResolver
from api.waiting import Backlogs, PendingStage, pending_stage
from db.repository import CourseRepository, CourseRow
from settings import Settings
from workflows.types import course_id_of, workflow_id_for

DESCRIBE_TIMEOUT = timedelta(seconds=3)
# A course in one of these has finished its generation, whatever its run still does: a run that
# wrote `completed` may be finishing its last steps, and a cancel must not undo it.
TERMINAL = frozenset({"completed", "failed", "cancelled"})
ROLLED_BACK = frozenset({"failed", "cancelled"})


@dataclass(frozen=True)
class Described:
    """What a describe of a run says: its id, status and stage waiting for a worker."""

    run_id: str
    status: WorkflowStatusName | None
    pending: PendingStage | None = None


class Runs:
    def __init__(
        self,
        starter: Starter,
        tiers: TierResolver,
        temporal: TemporalConnector,
        leases: Leases,
        settings: Settings,
        courses: CourseRepository,
    ) -> None:
        self._starter, self._tiers, self._temporal = starter, tiers, temporal
        self._leases, self._admission = leases, settings.admission
        self._stage_task_queue = settings.temporal.stage_task_queue
        self._courses, self._backlogs = courses, Backlogs(temporal)

    async def status(self, principal: Principal, course_id: str) -> StatusResponse:
        """The row, the tier and a describe of the course's latest run, all concurrently.

        The describe is of `course-generation-<courseId>` (the id every run of the course has),
        so it needs no row first. Only when it finds another run than the one the row records
        (a run started between the two reads) is the recorded run described by its id; a
        Temporal that does not answer is a 503 after that one describe. The same describe says
        whether the run waits for stage capacity; a rolled-back course adds what was undone.
        """
        latest = asyncio.ensure_future(self._describe_latest(course_id))
        try:
            course, tier = await asyncio.gather(
                self._starter.owned_course(principal, course_id), self._tiers.tier(principal)
            )
        except BaseException:
            _discard(latest)
            raise
        run = None
        if course.workflow_id and course.run_id:
            run = await self._recorded_run(course_id, (course.workflow_id, course.run_id), latest)
        else:
            _discard(latest)
        return StatusResponse(
            course_id=course.id,
            workflow_id=course.workflow_id,
            run_id=course.run_id,
            generation_status=course.generation_status,
            workflow_status=run.status if run else None,
            progress=course.generation_progress,
            started_at=course.generation_started_at,
            completed_at=course.generation_completed_at,
            tier=tier.value,
            waiting=await self._waiting(run),
            compensations=await self._compensations(course),
        )

    async def cancel(
        self, principal: Principal, course_id: str, reason: str | None
    ) -> CancelResponse:
        course = await self._starter.owned_course(principal, course_id)
        if not (course.workflow_id and course.run_id):
            raise NotRunning("the course has no run")
        if course.generation_status in TERMINAL:
            raise NotRunning(f"the course's generation has ended ({course.generation_status})")
        handle = await self._handle(course.workflow_id, course.run_id)
        if await self._status_of(handle) != "RUNNING":
            raise NotRunning("the course's run is not open")
        try:
            await handle.cancel(reason=reason or "", rpc_timeout=DESCRIBE_TIMEOUT)
        except RPCError as exc:
            raise run_problem(exc) from exc
        return CancelResponse(
            course_id=course.id, workflow_id=course.workflow_id, run_id=course.run_id
        )

    async def concurrency(self, principal: Principal) -> ConcurrencyResponse:
        tier = await self._tiers.tier(principal)
        holders = await self._leases.usage(principal.user_id)
        return ConcurrencyResponse(
            tier=tier.value,
            limit=self._admission.policy(tier).limit,
            active=[
                ActiveCourse(
                    course_id=course_id_of(h.holder),
                    workflow_id=h.holder,
                    since=datetime.fromtimestamp(h.since, UTC),
                )
                for h in holders
            ],
        )

    async def _recorded_run(
        self, course_id: str, recorded: tuple[str, str], latest: asyncio.Future[Described | None]
    ) -> Described | None:
        """The recorded (workflow id, run id): from the latest describe when it found that run
        or no run at all, else from a describe of the recorded run."""
        if recorded[0] != workflow_id_for(course_id):
            _discard(latest)
            return await self._describe(await self._handle(*recorded))
        found = await latest
        if found is None or found.run_id == recorded[1]:
            return found
        return await self._describe(await self._handle(*recorded))

    async def _describe_latest(self, course_id: str) -> Described | None:
        """The latest run of the course's workflow id; None when Temporal does not know the id;
        a problem when Temporal does not answer."""
        client = await self._temporal.client()
        return await self._describe(client.get_workflow_handle(workflow_id_for(course_id)))

    async def _waiting(self, run: Described | None) -> Waiting | None:
        if run is None or run.status != "RUNNING" or run.pending is None:
            return None
        pending = run.pending
        backlog = await self._backlogs.count(pending.task_queue)
        return Waiting(stage=pending.stage, since=pending.since, backlog=backlog)

    async def _compensations(self, course: CourseRow) -> list[str] | None:
        """What the recorded run's saga undid, once the course rolled back."""
        if course.generation_status not in ROLLED_BACK or course.run_id is None:
            return None
        return await self._courses.rollback_undone(course.id, course.run_id)

    async def _handle(self, workflow_id: str, run_id: str) -> WorkflowHandle[object, object]:
        client: Client = await self._temporal.client()
        return client.get_workflow_handle(workflow_id, run_id=run_id)

    async def _status_of(self, handle: WorkflowHandle[object, object]) -> WorkflowStatusName | None:
        described = await self._describe(handle)
        return described.status if described else None

    async def _describe(self, handle: WorkflowHandle[object, object]) -> Described | None:
        """The run `handle` names; None when Temporal does not know it; a problem when
        Temporal does not answer."""
        try:
            description = await handle.describe(rpc_timeout=DESCRIBE_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise run_problem(exc) from exc
        status = _NAMES.get(description.status) if description.status is not None else None
        pending = pending_stage(description.raw_description, self._stage_task_queue)
        return Described(description.run_id, status, pending)


_NAMES: dict[WorkflowExecutionStatus, WorkflowStatusName] = {
    WorkflowExecutionStatus.RUNNING: "RUNNING",
    WorkflowExecutionStatus.COMPLETED: "COMPLETED",
    WorkflowExecutionStatus.FAILED: "FAILED",
    WorkflowExecutionStatus.CANCELED: "CANCELED",
    WorkflowExecutionStatus.TERMINATED: "TERMINATED",
    WorkflowExecutionStatus.TIMED_OUT: "TIMED_OUT",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
}


def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel a read whose answer is not needed; its outcome is retrieved, never logged."""
    task.cancel()
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
