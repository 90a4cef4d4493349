"""The gateway's fan-out of course changes: one read per change burst, every follower of the
course served, a follower that falls too far behind dropped without affecting the others."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from api.sse.hub import ProgressHub
from api.sse.snapshot import Snapshot
from tests.helpers import eventually


def snap(course_id: str, seq: int, status: str = "generating_content") -> Snapshot:
    return Snapshot(course_id, seq, status, 4, 70, "m", "wf", "run")


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
        return [self.rows[c] for c in course_ids if c in self.rows]


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


async def _idle(hub: ProgressHub, course_id: str) -> None:
    reader = hub._courses[course_id].reader
    assert reader is not None
    assert reader.done()
