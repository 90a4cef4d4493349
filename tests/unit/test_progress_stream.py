"""One client's stream of events: resumes after `Last-Event-ID` without duplicates, never goes
back to an older state, and ends with the terminal event."""

from __future__ import annotations

import json

import pytest

from api.sse.hub import ProgressHub
from api.sse.service import resume_id
from api.sse.snapshot import Snapshot
from api.sse.stream import progress_events


def snap(seq: int, status: str = "generating_content") -> Snapshot:
    return Snapshot("c", seq, status, 4, 70, "m", "wf", "run")


async def final(snapshot: Snapshot) -> str:
    return "COMPLETED"


async def collect(first: Snapshot, last_id: int | None, later: list[Snapshot]) -> list[str]:
    hub = ProgressHub(reader_unused)
    subscription = hub.subscribe("c")
    for snapshot in later:
        subscription.offer(snapshot)
    return [
        f"{event.event}:{event.id}:{json.loads(str(event.data))['workflowStatus']}"
        async for event in progress_events(first, last_id, subscription, final)
    ]


async def reader_unused(course_ids: object) -> list[Snapshot]:
    raise AssertionError("no read expected")


async def test_the_stream_starts_with_the_current_state_and_ends_at_terminal() -> None:
    """Current state, then newer ones only (an older or repeated one is skipped), then the
    terminal event with the run's final status."""
    later = [snap(4), snap(3), snap(5), snap(6, "completed")]
    assert await collect(snap(4), None, later) == [
        "progress:4:RUNNING",
        "progress:5:RUNNING",
        "terminal:6:COMPLETED",
    ]


async def test_resuming_skips_what_the_client_has() -> None:
    """With Last-Event-ID equal to the current seq nothing is repeated; with an older one the
    current state (coalescing what was missed) is sent first."""
    later = [snap(5, "failed")]
    assert await collect(snap(4), 4, later) == ["terminal:5:COMPLETED"]
    assert await collect(snap(4), 2, later) == ["progress:4:RUNNING", "terminal:5:COMPLETED"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("3", 3), ("0", 0), ("9", None), ("-1", None), ("x", None)],
)
def test_resume_id_accepts_only_seqs_reached(header: str | None, expected: int | None) -> None:
    """A Last-Event-ID beyond the course's seq, negative or not a number is ignored."""
    assert resume_id(header, 5) == expected
