"""One client's stream: the events of one subscription, framed by sse-starlette.

The first event is the state the request read (unless the client's `Last-Event-ID` already has
it); then one per published change newer than the last sent. A terminal state is sent as
`event: terminal` with the run's Temporal status, and ends the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import structlog
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from api.sse.hub import ProgressHub, Subscription
from api.sse.snapshot import Snapshot

KEEPALIVE_SECONDS = 15
# A send blocked this long (the client stopped reading and every buffer on the way is full)
# ends the stream, also when no new event would fill the hub's buffer.
SEND_TIMEOUT_SECONDS = 30.0
RUNNING = "RUNNING"
FinalStatus = Callable[[Snapshot], Awaitable[str | None]]
log = structlog.get_logger("api.sse")


async def progress_events(
    first: Snapshot, last_id: int | None, subscription: Subscription, final_status: FinalStatus
) -> AsyncIterator[ServerSentEvent]:
    """`first`, then every newer snapshot of `subscription`; ids strictly growing past
    `last_id`; the first terminal snapshot is the last event."""
    sent = -1 if last_id is None else last_id
    snapshot = first
    while True:
        if snapshot.seq > sent:
            if snapshot.terminal:
                yield snapshot.event(await final_status(snapshot))
                return
            yield snapshot.event(RUNNING if snapshot.run_id else None)
            sent = snapshot.seq
        snapshot = await subscription.next()


class ProgressResponse(EventSourceResponse):
    """The event stream of `subscription`, cut when the hub drops it (too far behind), and
    unsubscribed however it ends."""

    def __init__(
        self, events: AsyncIterator[ServerSentEvent], hub: ProgressHub, subscription: Subscription
    ) -> None:
        super().__init__(
            events,
            ping=KEEPALIVE_SECONDS,
            send_timeout=SEND_TIMEOUT_SECONDS,
            headers={"Cache-Control": "no-store"},
        )
        self._hub, self._subscription = hub, subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with anyio.CancelScope() as cut:
                watcher = asyncio.create_task(self._cut_when_dropped(cut))
                try:
                    await super().__call__(scope, receive, send)
                finally:
                    watcher.cancel()
        except SendTimeoutError:
            log.warning("stream closed: the client stopped reading")
        finally:
            self._hub.unsubscribe(self._subscription)

    async def _cut_when_dropped(self, cut: anyio.CancelScope) -> None:
        await self._subscription.dropped.wait()
        log.warning("stream closed: the client fell too far behind")
        cut.cancel()
