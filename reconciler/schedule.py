"""The reconciler's Schedule and its on-demand passes, in Temporal.

The worker calls `apply_schedule` at start: it creates or updates the Schedule
`course-generation-reconciler` (every `RECONCILE_INTERVAL_SECONDS`, overlap SKIP, on the
workflow task queue), or deletes it when the interval is 0, and then asks for one pass at once.
`PassTrigger` asks for a pass on demand: a one-off `ReconcileWorkflow` with a fixed id and
USE_EXISTING, so concurrent asks (many refused reserves at once) share one pass.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from workflows.reconcile import ReconcileWorkflow

SCHEDULE_ID = "course-generation-reconciler"
TRIGGERED_ID = "course-generation-reconciler-now"
PASS_TIMEOUT = timedelta(hours=1)  # a pass never blocks the Schedule (overlap SKIP) for longer
TRIGGER_EVERY_SECONDS = 2.0  # this process asks at most this often
log = logging.getLogger("reconciler.schedule")


def schedule_for(task_queue: str, interval_seconds: int) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            id=SCHEDULE_ID,
            task_queue=task_queue,
            execution_timeout=PASS_TIMEOUT,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=interval_seconds))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(
            note="Reconciles PostgreSQL and Redis with Temporal (course generation)"
        ),
    )


async def apply_schedule(client: Client, task_queue: str, interval_seconds: int) -> str:
    """Create or update the Schedule (interval > 0) or delete it (0); says what it did."""
    handle = client.get_schedule_handle(SCHEDULE_ID)
    if interval_seconds <= 0:
        try:
            await handle.delete()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return "absent (RECONCILE_INTERVAL_SECONDS=0)"
        return "deleted (RECONCILE_INTERVAL_SECONDS=0)"
    wanted = schedule_for(task_queue, interval_seconds)
    try:
        await client.create_schedule(SCHEDULE_ID, wanted)
        return f"created, every {interval_seconds}s"
    except ScheduleAlreadyRunningError:

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=wanted)

        await handle.update(update)
        return f"updated, every {interval_seconds}s"


async def start_pass(client: Client, task_queue: str) -> None:
    """Start a pass now, or join the one already started on demand."""
    await client.start_workflow(
        ReconcileWorkflow.run,
        id=TRIGGERED_ID,
        task_queue=task_queue,
        execution_timeout=PASS_TIMEOUT,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


class PassTrigger:
    """`await trigger()` asks for a pass, at most every `TRIGGER_EVERY_SECONDS` per process."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self._client, self._task_queue = client, task_queue
        self._last = float("-inf")

    async def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last < TRIGGER_EVERY_SECONDS:
            return
        self._last = now
        await start_pass(self._client, self._task_queue)
