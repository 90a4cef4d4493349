"""The Temporal status of the run a stream reports: whether it is closed (a terminal course
whose run is closed answers 204) and, for the terminal event, its status once it closes."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio.client import Client, WorkflowHandle, WorkflowHistoryEventFilterType
from temporalio.service import RPCError

from api.problems import DependencyUnavailable
from api.sse.snapshot import Snapshot
from api.temporal import TemporalConnector

DESCRIBE_TIMEOUT = timedelta(seconds=3)
# After the terminal write a run still releases its lease and closes, within milliseconds.
CLOSE_WAIT_SECONDS = 2.0
RUNNING = "RUNNING"


class RunStatus:
    def __init__(self, temporal: TemporalConnector) -> None:
        self._temporal = temporal

    async def closed(self, snapshot: Snapshot) -> bool:
        """False only while Temporal says the recorded run is RUNNING."""
        return await self.describe(snapshot) != RUNNING

    async def final(self, snapshot: Snapshot) -> str | None:
        """The run's status once it closes (waiting up to 2 s for that), described once."""
        with contextlib.suppress(RPCError, DependencyUnavailable, TimeoutError):
            handle = await self._handle(snapshot)
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                async for _ in handle.fetch_history_events(
                    wait_new_event=True,
                    event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT,
                ):
                    break
        return await self.describe(snapshot)

    async def describe(self, snapshot: Snapshot) -> str | None:
        """Temporal's status name of the recorded run; None when unknown or unreachable."""
        try:
            handle = await self._handle(snapshot)
            description = await handle.describe(rpc_timeout=DESCRIBE_TIMEOUT)
        except (RPCError, DependencyUnavailable, ValueError):
            return None
        return description.status.name if description.status is not None else None

    async def _handle(self, snapshot: Snapshot) -> WorkflowHandle[object, object]:
        if not (snapshot.workflow_id and snapshot.run_id):
            raise ValueError("the course records no run")
        client: Client = await self._temporal.client()
        return client.get_workflow_handle(snapshot.workflow_id, run_id=snapshot.run_id)
