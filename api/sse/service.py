"""The progress streams of one gateway process: one LISTEN connection feeds the hub; a request
is answered with its stream, or 204 when there is nothing left to follow."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence

import structlog
from starlette.responses import Response

from api.metrics import SSE_SUBSCRIBERS
from api.sse.hub import ProgressHub
from api.sse.run_status import RunStatus
from api.sse.snapshot import Snapshot
from api.sse.stream import ProgressResponse, progress_events
from api.temporal import TemporalConnector
from db.listen import Listener
from db.repository import CourseRepository, CourseRow

CHANNEL = "course_progress"
LISTENER_NAME = "cg-progress-listener"  # its application_name in pg_stat_activity
LISTEN_WAIT_SECONDS = 5.0
log = structlog.get_logger("api.sse")


class ProgressEvents:
    def __init__(self, courses: CourseRepository, dsn: str, temporal: TemporalConnector) -> None:
        self._courses = courses
        self.hub = ProgressHub(self._read, counted=SSE_SUBSCRIBERS.inc)
        self.listener = Listener(
            dsn, CHANNEL, self._notified, self.hub.resync, application_name=LISTENER_NAME
        )
        self._runs = RunStatus(temporal)
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> None:
        """Start listening in the background, once the first attempt to LISTEN is over: a
        stream opened as soon as the process serves then misses no notification. (With
        PostgreSQL down, streams catch up when the listener connects.)"""
        await self._stack.enter_async_context(self.listener.running())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listener.settled.wait(), LISTEN_WAIT_SECONDS)

    async def aclose(self) -> None:
        await self._stack.aclose()
        await self.hub.aclose()

    async def stream(
        self,
        course_id: str,
        owned_course: Callable[[], Awaitable[CourseRow]],
        last_event_id: str | None,
    ) -> Response:
        """The course's stream; subscribed before the row is read, so no change falls between."""
        subscription = self.hub.subscribe(course_id)
        try:
            first = Snapshot.from_course(await owned_course())
            last = resume_id(last_event_id, first.seq)
            if first.terminal and await self._nothing_to_send(first, last):
                self.hub.unsubscribe(subscription)
                return Response(status_code=204)
        except BaseException:
            self.hub.unsubscribe(subscription)
            raise
        events = progress_events(first, last, subscription, self._runs.final)
        return ProgressResponse(events, self.hub, subscription)

    async def _nothing_to_send(self, terminal: Snapshot, last: int | None) -> bool:
        """The client has the terminal event, or asks afresh about a run that is closed."""
        if last is not None:
            return last >= terminal.seq
        return await self._runs.closed(terminal)

    async def _read(self, course_ids: Sequence[str]) -> list[Snapshot]:
        records = await self._courses.progress_snapshots(course_ids)
        return [Snapshot.from_record(record) for record in records]

    def _notified(self, payload: str) -> None:
        message = json.loads(payload)
        snapshot = Snapshot.from_notification(message)
        if snapshot is not None:
            self.hub.arrived(snapshot)
        else:
            self.hub.changed(str(message["courseId"]), int(message["seq"]))


def resume_id(header: str | None, current: int) -> int | None:
    """The `Last-Event-ID` to resume after: a seq this course has reached, else None."""
    try:
        value = int(header) if header is not None else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value <= current else None
