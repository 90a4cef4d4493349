"""`api.runs.Runs` against stand-ins for the row, the tier and Temporal: how many describes a
status read makes, when it says a run waits for stage capacity and what a rolled-back run undid,
and that a cancel never reaches a course whose generation has ended."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.api.common.v1 import ActivityType, WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.taskqueue.v1 import TaskQueueStats
from temporalio.api.workflow.v1 import PendingActivityInfo, WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeTaskQueueResponse,
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
)
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

import api.waiting
from api.auth import Principal
from api.problems import TEMPORAL_UNAVAILABLE, DependencyUnavailable, NotRunning
from api.runs import Runs
from tests.factories import make_settings
from tiers import Tier
from workflows.types import workflow_id_for

COURSE = str(uuid.uuid4())
USER = Principal(user_id=str(uuid.uuid4()), claimed_tier="FREE")
SCHEDULED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
SCHEDULED_AT = datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC)


class FakeTemporal:
    """A client whose runs describe as `answer` (a status, or an RPC error) with `pending`
    activities, cancel, and whose task queues report a backlog of `backlog`."""

    namespace = "default"

    def __init__(self, answer: WorkflowExecutionStatus | RPCStatusCode, run_id: str) -> None:
        self.answer, self.run_id = answer, run_id
        self.describes: list[tuple[str, str | None]] = []
        self.cancels = 0
        self.pending: list[PendingActivityInfo] = []
        self.backlog = 7
        self.stats_reads: list[str] = []
        self.workflow_service = self

    async def client(self) -> Any:
        return self

    async def describe_workflow_execution(
        self, request: DescribeWorkflowExecutionRequest, **_: Any
    ) -> DescribeWorkflowExecutionResponse:
        execution = request.execution
        self.describes.append((execution.workflow_id, execution.run_id or None))
        if isinstance(self.answer, RPCStatusCode):
            raise RPCError("describe failed", self.answer, b"")
        info = WorkflowExecutionInfo(
            execution=WorkflowExecution(workflow_id=execution.workflow_id, run_id=self.run_id),
            status=cast(Any, int(self.answer)),
        )
        return DescribeWorkflowExecutionResponse(
            workflow_execution_info=info, pending_activities=self.pending
        )

    def get_workflow_handle(self, workflow_id: str, run_id: str | None = None) -> Any:
        async def cancel(**_: Any) -> None:
            self.cancels += 1

        return SimpleNamespace(cancel=cancel)

    async def describe_task_queue(self, request: DescribeTaskQueueRequest, **_: Any) -> Any:
        self.stats_reads.append(request.task_queue.name)
        assert request.report_stats
        stats = TaskQueueStats(approximate_backlog_count=self.backlog)
        return DescribeTaskQueueResponse(stats=stats)


def course_row(generation_status: str | None, run_id: str = "run-1") -> SimpleNamespace:
    return SimpleNamespace(
        id=COURSE,
        workflow_id=workflow_id_for(COURSE),
        run_id=run_id,
        generation_status=generation_status,
        generation_progress=None,
        generation_started_at=None,
        generation_completed_at=None,
    )


def _runs(
    temporal: FakeTemporal,
    generation_status: str | None,
    run_id: str = "run-1",
    undone: list[str] | None = None,
    row: SimpleNamespace | None = None,
    **settings: str,
) -> Runs:
    """A `Runs` whose caller owns `row` (by default one in `generation_status` recording
    `run_id`); a test may change the row between reads."""
    row = row or course_row(generation_status, run_id)

    async def owned_course(*_: Any) -> Any:
        return row

    async def owned_read(*_: Any) -> Any:
        return SimpleNamespace(course=row, caller_tier=None, undone=undone), Tier.FREE

    starter = SimpleNamespace(owned_course=owned_course, owned_read=owned_read)
    return Runs(
        cast(Any, starter),
        cast(Any, None),
        cast(Any, temporal),
        cast(Any, None),
        make_settings(TEMPORAL_STAGE_TASK_QUEUE="stages", **settings),
    )


def pending(
    stage: str, state: PendingActivityState.ValueType = SCHEDULED, attempt: int = 1, queue: str = ""
) -> PendingActivityInfo:
    info = PendingActivityInfo(activity_type=ActivityType(name=stage), state=state, attempt=attempt)
    info.scheduled_time.FromDatetime(SCHEDULED_AT)
    info.activity_options.task_queue.name = queue
    return info


async def test_status_makes_one_describe_when_temporal_fails() -> None:
    """A Temporal that does not answer the describe is one describe and a 503, not a second
    describe of the recorded run."""
    temporal = FakeTemporal(RPCStatusCode.UNAVAILABLE, "run-1")
    with pytest.raises(DependencyUnavailable) as raised:
        await _runs(temporal, "generating_content").status(USER, COURSE)
    assert raised.value.detail == TEMPORAL_UNAVAILABLE
    assert len(temporal.describes) == 1


async def test_status_of_the_recorded_run_is_one_describe() -> None:
    """When the latest run is the recorded one, its status comes from that one describe."""
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    status = await _runs(temporal, "generating_content").status(USER, COURSE)
    assert status.workflow_status == "RUNNING"
    assert temporal.describes == [(workflow_id_for(COURSE), None)]


async def test_status_when_temporal_forgot_the_workflow_is_one_describe() -> None:
    """A workflow id Temporal does not know has no recorded run either: null, one describe."""
    temporal = FakeTemporal(RPCStatusCode.NOT_FOUND, "run-1")
    status = await _runs(temporal, "completed").status(USER, COURSE)
    assert status.workflow_status is None
    assert len(temporal.describes) == 1


async def test_status_of_an_older_recorded_run_describes_it_by_id() -> None:
    """A newer run than the recorded one (started between the reads): the recorded run is
    described by its id."""
    temporal = FakeTemporal(WorkflowExecutionStatus.COMPLETED, "run-2")
    await _runs(temporal, "completed", run_id="run-1").status(USER, COURSE)
    assert temporal.describes == [
        (workflow_id_for(COURSE), None),
        (workflow_id_for(COURSE), "run-1"),
    ]


@pytest.mark.parametrize("ended", ["completed", "failed", "cancelled"])
async def test_cancel_of_an_ended_generation_is_409_while_the_run_is_open(ended: str) -> None:
    """A course whose row is terminal is 409 not-running though its run is still RUNNING (it
    may be finishing after writing `completed`); no cancel is sent."""
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    with pytest.raises(NotRunning) as raised:
        await _runs(temporal, ended).cancel(USER, COURSE, None)
    assert ended in raised.value.detail
    assert temporal.cancels == 0


async def test_cancel_of_a_running_generation_is_sent() -> None:
    """A course mid-generation with its run open is cancelled."""
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    answer = await _runs(temporal, "generating_content").cancel(USER, COURSE, "stop")
    assert (answer.run_id, temporal.cancels) == ("run-1", 1)


async def test_waiting_comes_from_the_one_describe_and_a_cached_backlog() -> None:
    """A stage scheduled on its first attempt is `waiting` (stage, since, the queue's backlog):
    from the status read's one describe, the backlog read once for two reads in a row."""
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    temporal.pending = [pending("text_generation", queue="stages.text_generation")]
    runs = _runs(temporal, "generating_content")
    first = await runs.status(USER, COURSE)
    second = await runs.status(USER, COURSE)
    assert first.waiting is not None
    assert second.waiting == first.waiting
    assert (first.waiting.stage, first.waiting.since) == ("text_generation", SCHEDULED_AT)
    assert first.waiting.backlog == 7
    assert len(temporal.describes) == 2  # one per status read
    assert temporal.stats_reads == ["stages.text_generation"]


async def test_waiting_falls_back_to_the_configured_stage_queue() -> None:
    """A server that does not name the activity's queue: `<TEMPORAL_STAGE_TASK_QUEUE>.<stage>`."""
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    temporal.pending = [pending("finalization")]
    status = await _runs(temporal, "finalizing").status(USER, COURSE)
    assert status.waiting is not None
    assert temporal.stats_reads == ["stages.finalization"]


@pytest.mark.parametrize(
    "activity",
    [
        pending("text_generation", state=STARTED),
        pending("text_generation", attempt=2),  # a retry waiting out its backoff
        pending("text_generation_cleanup"),
        pending("update_progress"),
    ],
    ids=["started", "retry", "cleanup", "not-a-stage"],
)
async def test_only_a_first_attempt_stage_not_started_is_waiting(
    activity: PendingActivityInfo,
) -> None:
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    temporal.pending = [activity]
    status = await _runs(temporal, "generating_content").status(USER, COURSE)
    assert status.waiting is None
    assert temporal.stats_reads == []


async def test_compensations_come_with_the_row() -> None:
    """What a rolled-back run undid is read with the row (the query reads it only for a failed
    or cancelled course) and answered as read."""
    undone = ["finish_generation", "release_lease"]
    temporal = FakeTemporal(WorkflowExecutionStatus.FAILED, "run-1")
    status = await _runs(temporal, "failed", undone=undone).status(USER, COURSE)
    assert status.compensations == undone


async def test_a_closed_run_is_described_once() -> None:
    """A closed run's describe is kept: later status reads of the course send no describe."""
    temporal = FakeTemporal(WorkflowExecutionStatus.COMPLETED, "run-1")
    runs = _runs(temporal, "completed")
    answers = [(await runs.status(USER, COURSE)).workflow_status for _ in range(3)]
    assert answers == ["COMPLETED"] * 3
    assert temporal.describes == [(workflow_id_for(COURSE), None)]


async def test_an_open_run_is_described_on_every_read() -> None:
    """A RUNNING run is never kept: each read describes it, and sees it close."""
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    runs = _runs(temporal, "finalizing")
    first = await runs.status(USER, COURSE)
    second = await runs.status(USER, COURSE)
    temporal.answer = WorkflowExecutionStatus.COMPLETED
    third = await runs.status(USER, COURSE)
    fourth = await runs.status(USER, COURSE)
    statuses = [s.workflow_status for s in (first, second, third, fourth)]
    assert statuses == ["RUNNING", "RUNNING", "COMPLETED", "COMPLETED"]
    assert len(temporal.describes) == 3


async def test_no_cache_when_its_size_is_zero() -> None:
    temporal = FakeTemporal(WorkflowExecutionStatus.CANCELED, "run-1")
    runs = _runs(temporal, "cancelled", CLOSED_RUN_CACHE_SIZE="0")
    for _ in range(2):
        assert (await runs.status(USER, COURSE)).workflow_status == "CANCELED"
    assert len(temporal.describes) == 2


async def test_a_regeneration_is_described_live_after_a_kept_run() -> None:
    """The row records a newer run than the kept closed one: that run is described by its id,
    and once seen open, reads describe the course's latest run alongside the row again."""
    temporal = FakeTemporal(WorkflowExecutionStatus.COMPLETED, "run-1")
    row = course_row("completed")
    runs = _runs(temporal, "completed", row=row)
    await runs.status(USER, COURSE)
    temporal.describes.clear()
    temporal.answer, temporal.run_id = WorkflowExecutionStatus.RUNNING, "run-2"
    row.generation_status, row.run_id = "generating_content", "run-2"
    first = await runs.status(USER, COURSE)
    second = await runs.status(USER, COURSE)
    assert (first.workflow_status, second.workflow_status) == ("RUNNING", "RUNNING")
    assert temporal.describes == [
        (workflow_id_for(COURSE), "run-2"),
        (workflow_id_for(COURSE), None),
    ]


async def test_cancel_of_a_kept_closed_run_sends_nothing() -> None:
    """A row that still says running while its run is kept closed: 409, no describe, no
    cancel."""
    temporal = FakeTemporal(WorkflowExecutionStatus.FAILED, "run-1")
    runs = _runs(temporal, "generating_content")
    await runs.status(USER, COURSE)
    with pytest.raises(NotRunning):
        await runs.cancel(USER, COURSE, None)
    assert (len(temporal.describes), temporal.cancels) == (1, 0)


async def test_a_stale_backlog_is_answered_while_it_is_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past its cache time the backlog is answered at once, the fresh read going out in the
    background; the next read has its value."""
    monkeypatch.setattr(api.waiting, "BACKLOG_CACHE_SECONDS", 0.0)
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    temporal.pending = [pending("text_generation", queue="stages.text_generation")]
    runs = _runs(temporal, "generating_content")
    backlogs = []
    for backlog in (7, 9, 9):
        temporal.backlog = backlog
        waiting = (await runs.status(USER, COURSE)).waiting
        assert waiting is not None
        backlogs.append(waiting.backlog)
        await asyncio.sleep(0.01)  # the background read
    assert backlogs == [7, 7, 9]
    assert len(temporal.stats_reads) == 3
