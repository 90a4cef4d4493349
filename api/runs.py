"""Reading and cancelling the run recorded on a course, and the caller's admission usage."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
)
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from admission import Leases
from api.auth import Principal
from api.closed_runs import ClosedRuns
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
from settings import Settings
from workflows.types import course_id_of, workflow_id_for

DESCRIBE_TIMEOUT = timedelta(seconds=3)
# A course in one of these has finished its generation, whatever its run still does: a run that
# wrote `completed` may be finishing its last steps, and a cancel must not undo it.
TERMINAL = frozenset({"completed", "failed", "cancelled"})


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
    ) -> None:
        self._starter, self._tiers, self._temporal = starter, tiers, temporal
        self._leases, self._admission = leases, settings.admission
        self._stage_task_queue = settings.temporal.stage_task_queue
        self._backlogs = Backlogs(temporal)
        cache = settings.status
        self._closed: ClosedRuns[Described] = ClosedRuns(
            cache.closed_run_cache_size, cache.closed_run_cache_ttl_seconds
        )

    async def status(self, principal: Principal, course_id: str) -> StatusResponse:
        """The row and tier (one query) and a describe of the course's latest run, concurrently.

        The describe is of `course-generation-<courseId>` (the id every run of the course has),
        so it needs no row first. Only when it finds another run than the one the row records
        (a run started between the two reads) is the recorded run described by its id; a
        Temporal that does not answer is a 503 after that one describe. A recorded run that
        `ClosedRuns` keeps is not described again; when the course's last run is known to be
        closed, no describe goes out before the row says which run it records. The same
        describe says whether the run waits for stage capacity; a rolled-back course adds what
        was undone (read with the row).
        """
        latest = None
        if not self._closed.closed_latest(workflow_id_for(course_id)):
            latest = asyncio.ensure_future(self._describe_latest(course_id))
        try:
            read, tier = await self._starter.owned_read(principal, course_id)
        except BaseException:
            _discard(latest)
            raise
        course = read.course
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
            compensations=read.undone,  # read only for a rolled-back course
        )

    async def cancel(
        self, principal: Principal, course_id: str, reason: str | None
    ) -> CancelResponse:
        course = await self._starter.owned_course(principal, course_id)
        if not (course.workflow_id and course.run_id):
            raise NotRunning("the course has no run")
        if course.generation_status in TERMINAL:
            raise NotRunning(f"the course's generation has ended ({course.generation_status})")
        run = await self._describe(course.workflow_id, course.run_id)
        if run is None or run.status != "RUNNING":
            raise NotRunning("the course's run is not open")
        client = await self._temporal.client()
        handle = client.get_workflow_handle(course.workflow_id, run_id=course.run_id)
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
        self,
        course_id: str,
        recorded: tuple[str, str],
        latest: asyncio.Future[Described | None] | None,
    ) -> Described | None:
        """The recorded (workflow id, run id): kept when closed, else from the latest describe
        when it found that run or no run at all, else from a describe of the recorded run."""
        kept = self._closed.get(recorded)
        if kept is not None or latest is None or recorded[0] != workflow_id_for(course_id):
            _discard(latest)
            return kept or await self._describe(*recorded)
        found = await latest
        if found is None or found.run_id == recorded[1]:
            return found
        return await self._describe(*recorded)

    async def _describe_latest(self, course_id: str) -> Described | None:
        """The latest run of the course's workflow id; None when Temporal does not know the id;
        a problem when Temporal does not answer."""
        return await self._describe(workflow_id_for(course_id), None)

    async def _waiting(self, run: Described | None) -> Waiting | None:
        if run is None or run.status != "RUNNING" or run.pending is None:
            return None
        pending = run.pending
        backlog = await self._backlogs.count(pending.task_queue)
        return Waiting(stage=pending.stage, since=pending.since, backlog=backlog)

    async def _describe(self, workflow_id: str, run_id: str | None) -> Described | None:
        """The run (the latest when `run_id` is None); None when Temporal does not know it; a
        problem when Temporal does not answer. A closed run is answered from, or kept in,
        `ClosedRuns`.

        The describe is the raw service call: the SDK's `describe()` also decodes memo and
        search attributes, which a status read does not use."""
        if run_id is not None and (kept := self._closed.get((workflow_id, run_id))) is not None:
            return kept
        client = await self._temporal.client()
        execution = WorkflowExecution(workflow_id=workflow_id, run_id=run_id or "")
        request = DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=execution)
        try:
            raw = await client.workflow_service.describe_workflow_execution(
                request, retry=True, timeout=DESCRIBE_TIMEOUT
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise run_problem(exc) from exc
        described = self._described(raw)
        if described.status == "RUNNING":
            self._closed.saw_open(workflow_id)
        elif described.status is not None:
            self._closed.put((workflow_id, described.run_id), described)
        return described

    def _described(self, raw: DescribeWorkflowExecutionResponse) -> Described:
        info = raw.workflow_execution_info
        status = _NAMES.get(info.status)
        pending = pending_stage(raw, self._stage_task_queue)
        return Described(info.execution.run_id, status, pending)


_NAMES: dict[int, WorkflowStatusName] = {
    WorkflowExecutionStatus.RUNNING: "RUNNING",
    WorkflowExecutionStatus.COMPLETED: "COMPLETED",
    WorkflowExecutionStatus.FAILED: "FAILED",
    WorkflowExecutionStatus.CANCELED: "CANCELED",
    WorkflowExecutionStatus.TERMINATED: "TERMINATED",
    WorkflowExecutionStatus.TIMED_OUT: "TIMED_OUT",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
}


def _discard(task: asyncio.Future[Any] | None) -> None:
    """Cancel a read whose answer is not needed; its outcome is retrieved, never logged."""
    if task is None:
        return
    task.cancel()
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
