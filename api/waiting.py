"""Whether a run waits for stage capacity, and how long that stage's queue is.

A run *waits* while its stage activity is SCHEDULED and not started on its first attempt (a
retry waiting out its backoff is not waiting for capacity). The status read finds that in the
describe it already makes; the backlog comes from Temporal's task-queue statistics, read at
most once per `BACKLOG_CACHE_SECONDS` per queue however many status reads ask, in the
background once a first value is known.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.service import RPCError

import temporal_connect
from api.inflight import InFlight
from api.temporal import TemporalConnector
from workflows.steps import STAGE_NAMES, stage_queue

BACKLOG_CACHE_SECONDS = 1.5
STATS_TIMEOUT = timedelta(seconds=1)
SCHEDULED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
log = structlog.get_logger("api.waiting")


@dataclass(frozen=True, slots=True)
class PendingStage:
    """A stage activity waiting for a worker: since when, and on which queue."""

    stage: str
    since: datetime
    task_queue: str


def pending_stage(
    description: DescribeWorkflowExecutionResponse, stage_task_queue: str
) -> PendingStage | None:
    """The run's stage activity that is scheduled, not started, on its first attempt; its
    queue as the server reports it, else `<stage_task_queue>.<stage>`."""
    for pending in description.pending_activities:
        stage = pending.activity_type.name
        first = pending.attempt <= 1
        if stage in STAGE_NAMES and pending.state == SCHEDULED and first:
            queue = pending.activity_options.task_queue.name
            return PendingStage(
                stage=stage,
                since=pending.scheduled_time.ToDatetime(tzinfo=UTC),
                task_queue=queue or stage_queue(stage_task_queue, stage),
            )
    return None


class Backlogs:
    """Approximate backlogs of activity task queues, cached per queue for a moment; None when
    Temporal does not say within `STATS_TIMEOUT`."""

    def __init__(self, temporal: TemporalConnector) -> None:
        self._temporal = temporal
        self._read_at: dict[str, tuple[float, int | None]] = {}
        self._reads: InFlight[int | None] = InFlight()
        self._refreshing: set[asyncio.Future[tuple[int | None, bool]]] = set()

    async def count(self, task_queue: str) -> int | None:
        """The queue's backlog. Once read, a read older than `BACKLOG_CACHE_SECONDS` is still
        answered at once while a fresh one goes out in the background: no status read waits
        for the statistics but the queue's first."""
        cached = self._read_at.get(task_queue)
        if cached is None:
            count, _ = await self._reads.run(task_queue, lambda: self._read(task_queue))
            return count
        if time.monotonic() - cached[0] >= BACKLOG_CACHE_SECONDS:
            self._refresh(task_queue)
        return cached[1]

    def _refresh(self, task_queue: str) -> None:
        refresh = asyncio.ensure_future(self._reads.run(task_queue, lambda: self._read(task_queue)))
        self._refreshing.add(refresh)
        refresh.add_done_callback(self._refreshed)

    def _refreshed(self, refresh: asyncio.Future[tuple[int | None, bool]]) -> None:
        """Forget a finished background read; its failure was logged or is retried next time."""
        self._refreshing.discard(refresh)
        if not refresh.cancelled():
            refresh.exception()

    async def _read(self, task_queue: str) -> int | None:
        client = await self._temporal.client()
        count: int | None = None
        try:
            count = await temporal_connect.approximate_backlog(client, task_queue, STATS_TIMEOUT)
        except RPCError as exc:
            log.warning("task queue statistics unavailable", task_queue=task_queue, error=str(exc))
        self._read_at[task_queue] = (time.monotonic(), count)
        return count
