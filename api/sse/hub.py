"""Fan-out of course changes to the streams that follow them, within one gateway process.

A change of a course comes as a notification. The full form carries the whole new state: it is
published as is, so every change is its own event. The short form (courseId and seq only, sent
when the state is too big for a notification) makes the hub read that course's row instead; at
most one such read per course is in flight, and short changes that arrive meanwhile are read
together by the next one (the later seq wins). After a lost LISTEN connection every followed
course is read again (`resync`), since the notifications sent meanwhile are gone.

Order: the hub never publishes a seq at or below one it already published for the course.
While a read is owed (a short change, or a resync), full changes from that point on wait behind
it, so the state the read finds comes first and nothing newer is published before it; they are
published, in order, once the read answered. Each subscriber buffers at most `buffer` snapshots:
one that falls further behind is dropped (its stream is then closed; its client resumes with
`Last-Event-ID`), so a slow client never holds up the others or grows memory.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
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
class _Owed:
    """A read the course is owed: asked as request number `asked`; full changes with a seq of
    `seq` or more wait until a read started after the request has answered."""

    asked: int
    seq: int


@dataclass
class _Course:
    subscribers: set[Subscription] = field(default_factory=set)
    published: int = -1  # the highest seq offered to the subscribers
    stale: bool = False  # a short change arrived since the last read started
    reader: asyncio.Task[None] | None = None
    owed: list[_Owed] = field(default_factory=list)  # oldest first
    read_from: int = 0  # the request number the latest read of the course started at
    held: list[Snapshot] = field(default_factory=list)  # full changes waiting, in seq order

    @property
    def hold_from(self) -> float:
        """Full changes with this seq or more wait for a read."""
        return min((owed.seq for owed in self.owed), default=float("inf"))


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
        self._asked = 0  # read requests so far, of every course

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

    def arrived(self, snapshot: Snapshot) -> None:
        """A change that carries its whole state: published now, or after the read it must
        follow (unless no one here follows the course, or it is not newer than what was)."""
        course = self._courses.get(snapshot.course_id)
        if course is None or snapshot.seq <= course.published:
            return
        if snapshot.seq < course.hold_from:
            self._offer(course, snapshot)
            return
        seqs = [held.seq for held in course.held]
        at = bisect.bisect_left(seqs, snapshot.seq)
        if at < len(seqs) and seqs[at] == snapshot.seq:
            return
        course.held.insert(at, snapshot)
        # Reads keep failing: the oldest is skipped (what is held and the state the read finds
        # then fit in one subscriber's buffer).
        if len(course.held) > max(1, self._buffer - 1):
            del course.held[0]

    def changed(self, course_id: str, seq: int) -> None:
        """A change of `course_id` committed with `seq`, without its state: read the row and
        publish it (unless no one here follows the course, or a newer state was published)."""
        course = self._courses.get(course_id)
        if course is None or seq <= course.published:
            return
        self._owe(course, seq)
        course.stale = True
        if course.reader is None or course.reader.done():
            course.reader = asyncio.create_task(self._follow(course_id, course))

    async def resync(self) -> None:
        """Re-read every followed course and publish what changed (after a lost connection).
        Raises when the read fails; until a read answers, full changes of those courses wait."""
        courses = dict(self._courses)
        if not courses:
            return
        for course in courses.values():
            self._owe(course, course.published + 1)
        started = self._start_read(courses.values())
        try:
            snapshots = {s.course_id: s for s in await self._read(list(courses))}
        except Exception:
            for course in courses.values():
                self._unanswered(course)
            raise
        for course_id, course in courses.items():
            found = snapshots.get(course_id)
            self._answered(course, started, [] if found is None else [found])

    def publish(self, snapshot: Snapshot) -> None:
        """Offer `snapshot` to the course's subscribers now, if newer than what they got."""
        course = self._courses.get(snapshot.course_id)
        if course is not None:
            self._offer(course, snapshot)

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

    def _offer(self, course: _Course, snapshot: Snapshot) -> None:
        if snapshot.seq <= course.published:
            return
        course.published = snapshot.seq
        for subscription in list(course.subscribers):
            if not subscription.offer(snapshot):
                self.unsubscribe(subscription)  # its stream closes itself (and logs it)

    def _owe(self, course: _Course, seq: int) -> None:
        """Record a read request. Requests made since the latest read started are answered by
        the same next read, so they merge into one (keeping the lowest seq): a course owes at
        most one request per read in flight, plus one."""
        self._asked += 1
        last = course.owed[-1] if course.owed else None
        if last is not None and last.asked > course.read_from:
            course.owed[-1] = _Owed(self._asked, min(last.seq, seq))
        else:
            course.owed.append(_Owed(self._asked, seq))

    def _start_read(self, courses: Iterable[_Course]) -> int:
        """A read of `courses` starts now: it answers every request made so far."""
        for course in courses:
            course.read_from = self._asked
        return self._asked

    def _answered(self, course: _Course, started: int, snapshots: list[Snapshot]) -> None:
        """A read started at request `started` answered: publish what it found, then the held
        changes no remaining request holds back."""
        course.owed = [owed for owed in course.owed if owed.asked > started]
        for snapshot in snapshots:
            self._offer(course, snapshot)
        hold_from = course.hold_from
        while course.held and course.held[0].seq < hold_from:
            self._offer(course, course.held.pop(0))

    @staticmethod
    def _unanswered(course: _Course) -> None:
        """A read failed: what it was to answer is owed to the next read, which its reader
        starts (a retry); merged into one request, so failures do not pile requests up."""
        if len(course.owed) > 1:
            last = max(owed.asked for owed in course.owed)
            course.owed = [_Owed(last, min(owed.seq for owed in course.owed))]

    async def _follow(self, course_id: str, course: _Course) -> None:
        """Read the course while short changes keep arriving and someone still follows it."""
        while course.stale and self._courses.get(course_id) is course:
            course.stale = False
            started = self._start_read([course])
            try:
                snapshots = await self._read([course_id])
            except Exception as exc:
                log.warning("progress read failed", course_id=course_id, error=str(exc))
                self._unanswered(course)
                course.stale = True
                await asyncio.sleep(READ_RETRY_SECONDS)
                continue
            self._answered(course, started, snapshots)
