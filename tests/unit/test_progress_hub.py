"""The gateway's fan-out of course changes: a full notification published as is (no read), one
read per burst of short ones, the two kept in seq order; every follower of the course served, a
follower that falls too far behind dropped without affecting the others; a failed resync holds
newer changes back until a retry answers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from api.sse.hub import ProgressHub, Subscription
from api.sse.snapshot import Snapshot
from tests.helpers import eventually


def snap(course_id: str, seq: int, status: str = "generating_content") -> Snapshot:
    return Snapshot(course_id, seq, status, 4, 70, "m", "wf", "run")


def drain(subscription: Subscription) -> list[int]:
    """The seqs buffered for `subscription`, taken out."""
    seqs = []
    while subscription.buffered:
        seqs.append(subscription._queue.get_nowait().seq)
    return seqs


class Rows:
    """The courses' current rows; counts reads, and can hold a read until released."""

    def __init__(self) -> None:
        self.rows: dict[str, Snapshot] = {}
        self.reads: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    def set(self, course_id: str, seq: int) -> None:
        self.rows[course_id] = snap(course_id, seq)

    async def read(self, course_ids: Sequence[str]) -> list[Snapshot]:
        self.reads.append(list(course_ids))
        await self.gate.wait()
        if self.failing:
            self.failing -= 1
            raise ConnectionError("database unavailable")
        return [self.rows[c] for c in course_ids if c in self.rows]

    failing = 0  # how many of the next reads fail

    async def reading(self, count: int) -> None:
        assert len(self.reads) == count


async def test_a_change_reaches_every_follower_of_its_course_only() -> None:
    """One read per change; both followers of A get it, B's follower does not."""
    rows = Rows()
    hub = ProgressHub(rows.read)
    a1, a2, b = hub.subscribe("A"), hub.subscribe("A"), hub.subscribe("B")
    rows.set("A", 3)
    hub.changed("A", 3)
    assert (await a1.next()).seq == 3
    assert (await a2.next()).seq == 3
    assert (b.buffered, rows.reads) == (0, [["A"]])


async def test_changes_during_a_read_are_read_together() -> None:
    """Changes arriving while a read is in flight cost one more read, not one each; a change
    already published costs none."""
    rows = Rows()
    hub = ProgressHub(rows.read)
    follower = hub.subscribe("A")
    rows.gate.clear()
    rows.set("A", 1)
    hub.changed("A", 1)

    async def reading() -> None:
        assert len(rows.reads) == 1

    await eventually(reading)
    for seq in (2, 3, 4):
        rows.set("A", seq)
        hub.changed("A", seq)
    rows.gate.set()
    assert (await follower.next()).seq == 4
    await eventually(lambda: _idle(hub, "A"))
    hub.changed("A", 4)  # already published: no read
    assert (len(rows.reads), follower.buffered) == (2, 0)


async def test_a_follower_too_far_behind_is_dropped() -> None:
    """A follower whose buffer is full is dropped (and told so, and no longer counted); the
    others keep receiving."""
    rows = Rows()
    counted: list[int] = []
    hub = ProgressHub(rows.read, buffer=2, counted=counted.append)
    slow, fast = hub.subscribe("A"), hub.subscribe("A")
    received = []
    for seq in (1, 2, 3):
        hub.publish(snap("A", seq))
        received.append((await fast.next()).seq)
    assert slow.dropped.is_set()
    assert received == [1, 2, 3]
    assert hub.subscribers() == 1
    assert hub.buffered() == 0
    hub.unsubscribe(slow)  # its stream ends later and unsubscribes again: counted once
    assert sum(counted) == 1


async def test_resync_reads_every_followed_course_at_once() -> None:
    """After a lost connection every followed course is read in one query and what changed is
    published; an unfollowed course is forgotten."""
    rows = Rows()
    hub = ProgressHub(rows.read)
    a, b, c = hub.subscribe("A"), hub.subscribe("B"), hub.subscribe("C")
    hub.unsubscribe(c)
    rows.set("A", 5)
    rows.set("B", 7)
    await hub.resync()
    assert rows.reads == [["A", "B"]]
    assert ((await a.next()).seq, (await b.next()).seq) == (5, 7)
    await hub.resync()
    assert (a.buffered, b.buffered) == (0, 0)  # nothing newer


async def test_full_changes_are_each_published_without_a_read() -> None:
    """Every full change is its own event, in seq order; one not newer than the last published
    (a repeat, an older one) is skipped."""
    rows = Rows()
    hub = ProgressHub(rows.read)
    follower = hub.subscribe("A")
    for seq in (1, 2, 2, 3, 1, 4):
        hub.arrived(snap("A", seq))
    hub.arrived(snap("B", 9))  # nobody follows B
    assert drain(follower) == [1, 2, 3, 4]
    assert rows.reads == []


async def test_full_changes_wait_behind_a_short_ones_read() -> None:
    """A short change's read in flight: full changes after it wait, then come after the state the
    read found, in order, none twice; a short change arriving meanwhile holds back only what
    follows it."""
    answers: asyncio.Queue[int] = asyncio.Queue()
    reads: list[int] = []

    async def read(course_ids: Sequence[str]) -> list[Snapshot]:
        reads.append(len(reads))
        return [snap("A", await answers.get())]

    async def reading(count: int) -> None:
        assert len(reads) == count

    hub = ProgressHub(read)
    follower = hub.subscribe("A")
    hub.arrived(snap("A", 1))
    hub.changed("A", 2)  # the short form: read
    await eventually(lambda: reading(1))
    hub.arrived(snap("A", 3))
    hub.arrived(snap("A", 4))
    hub.changed("A", 5)  # short again: a second read
    hub.arrived(snap("A", 6))
    assert drain(follower) == [1]
    answers.put_nowait(2)  # the first read finds seq 2 (it began before 3 was written)
    await eventually(lambda: reading(2))
    assert drain(follower) == [2, 3, 4]  # 6 still waits for the read of 5
    answers.put_nowait(5)
    await eventually(lambda: _idle(hub, "A"))
    assert drain(follower) == [5, 6]
    hub.arrived(snap("A", 7))  # nothing owed: published at once
    assert drain(follower) == [7]


async def test_a_read_that_finds_a_later_state_skips_the_held_older_ones() -> None:
    """A read that finds a state newer than the held changes publishes it; the held ones are
    dropped, never sent after it."""
    rows = Rows()
    hub = ProgressHub(rows.read)
    follower = hub.subscribe("A")
    rows.gate.clear()
    hub.changed("A", 1)
    await eventually(lambda: rows.reading(1))
    hub.arrived(snap("A", 2))
    hub.arrived(snap("A", 3))
    rows.set("A", 3)
    rows.gate.set()
    await eventually(lambda: _idle(hub, "A"))
    hub.arrived(snap("A", 4))
    assert drain(follower) == [3, 4]


async def test_held_changes_are_bounded_while_reads_fail() -> None:
    """While a short change's read keeps failing, at most `buffer` - 1 full changes are held (the
    oldest skipped); once a read answers they follow its state, within one buffer."""
    rows = Rows()
    hub = ProgressHub(rows.read, buffer=4)
    follower = hub.subscribe("A")
    rows.gate.clear()
    rows.failing = 1
    rows.set("A", 1)
    hub.changed("A", 1)
    await eventually(lambda: rows.reading(1))
    for seq in range(2, 8):
        hub.arrived(snap("A", seq))
    assert len(hub._courses["A"].held) == 3

    async def receive() -> list[int]:  # a client reading as they come
        return [(await follower.next()).seq for _ in range(4)]

    received = asyncio.create_task(receive())
    rows.gate.set()  # fails once, retried a second later
    assert await asyncio.wait_for(received, 5) == [1, 5, 6, 7]


async def test_a_failed_resync_holds_changes_until_it_is_retried() -> None:
    """A resync that fails raises (its caller retries) and holds back full changes, which would
    otherwise hide the missed ones; the retry publishes the row's state, then them."""
    rows = Rows()
    hub = ProgressHub(rows.read)
    follower = hub.subscribe("A")
    hub.arrived(snap("A", 1))
    rows.set("A", 3)  # 2 and 3 were written while no connection listened
    rows.failing = 1
    with pytest.raises(ConnectionError):
        await hub.resync()
    hub.arrived(snap("A", 4))
    hub.arrived(snap("A", 5))
    assert drain(follower) == [1]
    rows.set("A", 5)
    await hub.resync()
    assert drain(follower) == [5]  # the row had moved on: the held ones are not newer
    rows.set("A", 6)
    rows.failing = 1
    with pytest.raises(ConnectionError):
        await hub.resync()
    hub.arrived(snap("A", 7))
    await hub.resync()  # finds 6
    assert drain(follower) == [6, 7]
    assert hub._courses["A"].owed == []


async def _idle(hub: ProgressHub, course_id: str) -> None:
    reader = hub._courses[course_id].reader
    assert reader is not None
    assert reader.done()
