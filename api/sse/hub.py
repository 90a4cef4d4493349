"""Fan-out of course changes to the streams that follow them, within one gateway process.

A change of a course (a notification carrying its new seq) makes the hub read that course's row
once and offer the snapshot to every subscriber of the course. At most one read per course is in
flight; changes that arrive meanwhile are read together by the next one (the later seq wins).
Each subscriber buffers at most `buffer` snapshots: one that falls further behind is dropped
(its stream is then closed; its client resumes with `Last-Event-ID`), so a slow client never
holds up the others or grows memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from api.sse.snapshot import Snapshot

BUFFER = 16
READ_RETRY_SECONDS = 1.0
Reader = Callable[[Sequence[str]], Awaitable[list[Snapshot]]]
log = structlog.get_logger("api.sse")


class Subscription:
    """One stream's place in the hub: its buffered snapshots, and `dropped` once it overflowed."""

    def __init__(self, course_id: str, buffer: int) -> None:
        self.course_id = course_id
        self.dropped = asyncio.Event()
        self._queue: asyncio.Queue[Snapshot] = asyncio.Queue(buffer)

    def offer(self, snapshot: Snapshot) -> bool:
        """Buffer `snapshot`; False (and `dropped` set) when the buffer is full."""
        try:
            self._queue.put_nowait(snapshot)
        except asyncio.QueueFull:
            self.dropped.set()
            return False
        return True

    async def next(self) -> Snapshot:
        return await self._queue.get()

    @property
    def buffered(self) -> int:
        return self._queue.qsize()


@dataclass
class _Course:
    subscribers: set[Subscription] = field(default_factory=set)
    published: int = -1  # the highest seq offered to the subscribers
    stale: bool = False  # a change arrived since the last read started
    reader: asyncio.Task[None] | None = None


class ProgressHub:
    """`counted(delta)` is told of every subscriber added (+1) or removed (-1) (a metric)."""

    def __init__(
        self,
        read: Reader,
        buffer: int = BUFFER,
        counted: Callable[[int], None] = lambda delta: None,
    ) -> None:
        self._read, self._buffer, self._counted = read, buffer, counted
        self._courses: dict[str, _Course] = {}

    def subscribe(self, course_id: str) -> Subscription:
        subscription = Subscription(course_id, self._buffer)
        self._courses.setdefault(course_id, _Course()).subscribers.add(subscription)
        self._counted(1)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        course = self._courses.get(subscription.course_id)
        if course is None or subscription not in course.subscribers:
            return
        course.subscribers.discard(subscription)
        self._counted(-1)
        if not course.subscribers:
            del self._courses[subscription.course_id]

    def changed(self, course_id: str, seq: int) -> None:
        """A change of `course_id` committed with `seq`: read and publish it (unless no one
        here follows the course, or a newer state was already published)."""
        course = self._courses.get(course_id)
        if course is None or seq <= course.published:
            return
        course.stale = True
        if course.reader is None or course.reader.done():
            course.reader = asyncio.create_task(self._follow(course_id, course))

    async def resync(self) -> None:
        """Re-read every followed course and publish what changed (after a lost connection)."""
        if self._courses:
            for snapshot in await self._read(list(self._courses)):
                self.publish(snapshot)

    def publish(self, snapshot: Snapshot) -> None:
        course = self._courses.get(snapshot.course_id)
        if course is None or snapshot.seq <= course.published:
            return
        course.published = snapshot.seq
        for subscription in list(course.subscribers):
            if not subscription.offer(snapshot):
                self.unsubscribe(subscription)  # its stream closes itself (and logs it)

    async def aclose(self) -> None:
        readers = [c.reader for c in self._courses.values() if c.reader is not None]
        for reader in readers:
            reader.cancel()
        for reader in readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    def subscribers(self, course_id: str | None = None) -> int:
        """Subscribers of `course_id`, or of every course."""
        courses = self._courses.values() if course_id is None else [self._courses.get(course_id)]
        return sum(len(course.subscribers) for course in courses if course is not None)

    def buffered(self) -> int:
        """Snapshots waiting in every subscriber's buffer (bounded by subscribers × buffer)."""
        return sum(s.buffered for c in self._courses.values() for s in c.subscribers)

    async def _follow(self, course_id: str, course: _Course) -> None:
        """Read the course while changes keep arriving and someone still follows it."""
        while course.stale and self._courses.get(course_id) is course:
            course.stale = False
            try:
                snapshots = await self._read([course_id])
            except Exception as exc:
                log.warning("progress read failed", course_id=course_id, error=str(exc))
                course.stale = True
                await asyncio.sleep(READ_RETRY_SECONDS)
                continue
            for snapshot in snapshots:
                self.publish(snapshot)
