"""`/generation/events`: a run's progress as Server-Sent Events, from the first state to the
terminal event; resumption with Last-Event-ID; 204 when there is nothing left to follow."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from api.sse import stream
from db.repository import CourseRepository
from tests.api.sse_support import Event, collect, events_path, read_events
from tests.api.support import QUICK, course_row, generation, wait_status
from tests.factories import bearer, hs_token, insert_course, insert_user, new_id, run_start
from tests.helpers import eventually


def assert_well_formed(events: list[Event], course_id: str) -> None:
    """Ids strictly growing and equal to `seq`; `terminal` only last."""
    seqs = [event.seq for event in events]
    assert seqs == sorted(set(seqs)), seqs
    assert all(event.data["seq"] == event.seq for event in events)
    assert {event.data["courseId"] for event in events} == {course_id}
    kinds = [event.event for event in events]
    assert kinds == ["progress"] * (len(kinds) - 1) + ["terminal"], kinds


async def test_a_client_sees_every_step_then_the_stream_closes(
    http: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A client following a course while its run starts and goes: an event for every change
    (steps 1 to 5 in order, ids growing one by one), the terminal event with the closed run's
    status, then the end of the stream."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    events: list[Event] = []
    async with http.stream("GET", events_path(course), headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        async for event in read_events(response):
            events.append(event)
            if len(events) == 1:  # following: now start the run
                started = await http.post(generation(course), headers=headers)
                assert started.status_code == 202, started.text
                assert started.json()["links"]["events"] == events_path(course)
        # the loop ended: the server closed the stream after the terminal event
    assert events[0].seq == 0
    events = events[1:]
    assert_well_formed(events, course)
    final = (await course_row(pg_pool, course))["progress_seq"]
    assert [event.seq for event in events] == list(range(1, final + 1))  # every change
    steps = [event.data["currentStep"] for event in events]
    assert steps == sorted(steps)
    assert list(dict.fromkeys(steps)) == [1, 2, 3, 4, 5]
    percentages = [event.data["percentage"] for event in events]
    assert percentages == sorted(percentages)
    last = events[-1].data
    assert (last["generationStatus"], last["percentage"]) == ("completed", 100)
    assert last["workflowStatus"] == "COMPLETED"
    assert {event.data["workflowStatus"] for event in events[:-1]} == {"RUNNING"}


async def test_a_long_message_still_comes_as_its_own_event(
    http: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A change whose state does not fit in a notification (a long message) is read from the
    row and sent as its own event, between the changes before and after it."""
    user = await insert_user(pg_pool)
    course, run = await insert_course(pg_pool, user), new_id()
    repo = CourseRepository(pg_pool)
    await repo.begin_generation(course, "wf", run, "STRUCTURE_ANALYSIS", run_start())
    meta = {"run_id": run}
    long = "я" * 5000  # 10 000 bytes
    writes = [
        lambda: repo.update_progress(course, 1, "in_progress", "short", metadata=meta),
        lambda: repo.update_progress(course, 1, "completed", long, metadata=meta),
        lambda: repo.update_progress(course, 2, "in_progress", "after", metadata=meta),
        lambda: repo.finish_generation(course, run, "cancelled", "stopped"),
    ]
    events: list[Event] = []
    async with http.stream("GET", events_path(course), headers=bearer(hs_token(user))) as r:
        async for event in read_events(r):
            events.append(event)
            if writes:  # the next write once the previous one arrived
                await writes.pop(0)()
    assert [(e.seq, e.data["message"]) for e in events] == [
        (1, ""),
        (2, "short"),
        (3, long),
        (4, "after"),
        (5, "stopped"),
    ]
    assert events[-1].event == "terminal"


async def test_an_idle_stream_gets_keep_alive_pings(
    http: httpx.AsyncClient, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream with nothing to send carries a `: ping` comment line every keep-alive
    interval."""
    monkeypatch.setattr(stream, "KEEPALIVE_SECONDS", 0.2)
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user)
    lines: list[str] = []
    async with asyncio.timeout(10):
        async with http.stream("GET", events_path(course), headers=bearer(hs_token(user))) as r:
            async for line in r.aiter_lines():
                lines.append(line)
                if sum(line.startswith(": ping") for line in lines) == 2:
                    break
    assert lines[0] == "id: 0"
    assert lines.index("") < next(i for i, line in enumerate(lines) if line.startswith(": ping"))


async def test_the_stream_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    """`/openapi.json` describes the events route (GET, with its Last-Event-ID header)."""
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/api/v1/courses/{courseId}/generation/events"]["get"]
    assert "Last-Event-ID" in {parameter["name"] for parameter in operation["parameters"]}
    assert {"200", "204", "401", "404"} <= operation["responses"].keys()


async def test_resuming_yields_exactly_what_was_missed(
    http: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A client that reconnects with Last-Event-ID mid-run gets the row's state at that moment
    (never an older one), then the rest; no id is seen twice."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 0.4})
    headers = bearer(hs_token(user))
    assert (await http.post(generation(course), headers=headers)).status_code == 202
    first = await collect(http, course, headers, limit=2)
    last_id = first[-1].seq

    async def missed_some() -> int:
        seq: int = (await course_row(pg_pool, course))["progress_seq"]
        assert seq >= last_id + 2
        return seq

    await eventually(missed_some, timeout=15)
    async with http.stream(
        "GET", events_path(course), headers={**headers, "Last-Event-ID": str(last_id)}
    ) as response:
        row_seq_at_connect = (await course_row(pg_pool, course))["progress_seq"]
        rest = [event async for event in read_events(response)]
    assert rest[0].seq > last_id + 1  # the missed changes, coalesced
    assert rest[0].seq <= row_seq_at_connect
    assert_well_formed(first[:1] + rest, course)
    assert [e.seq for e in first + rest] == sorted({e.seq for e in first + rest})
    assert rest[-1].data["generationStatus"] == "completed"


async def test_nothing_to_follow_is_204(
    http: httpx.AsyncClient, client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A completed course whose run closed answers 204, as does a Last-Event-ID at its terminal
    event; a Last-Event-ID before it gets exactly the terminal event."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    assert (await client.post(generation(course), headers=headers)).status_code == 202
    await wait_status(client, course, headers, "completed")

    async def closed() -> None:
        status = await client.get(generation(course), headers=headers)
        assert status.json()["workflowStatus"] == "COMPLETED"

    await eventually(closed)
    final = (await course_row(pg_pool, course))["progress_seq"]
    fresh = await client.get(events_path(course), headers=headers)
    at_end = await client.get(events_path(course), headers={**headers, "Last-Event-ID": str(final)})
    assert (fresh.status_code, at_end.status_code) == (204, 204)
    missed = await collect(http, course, {**headers, "Last-Event-ID": str(final - 3)})
    assert [(e.event, e.seq) for e in missed] == [("terminal", final)]
    assert missed[0].data["workflowStatus"] == "COMPLETED"


async def test_a_course_never_started_streams_its_state(
    http: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A course without a run sends its current state (seq 0, no run status) and waits."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user)
    (event,) = await collect(http, course, bearer(hs_token(user)), limit=1)
    assert (event.event, event.seq) == ("progress", 0)
    assert event.data == {
        "courseId": course,
        "seq": 0,
        "generationStatus": None,
        "currentStep": None,
        "percentage": None,
        "message": None,
        "workflowStatus": None,
    }


async def test_missing_or_foreign_course_is_404(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """Another user's course and an unknown one answer 404 problems; no stream opens."""
    owner, other = await insert_user(pg_pool), await insert_user(pg_pool)
    course = await insert_course(pg_pool, owner)
    foreign = await client.get(events_path(course), headers=bearer(hs_token(other)))
    missing = await client.get(events_path(str(uuid.uuid4())), headers=bearer(hs_token(owner)))
    for response in (foreign, missing):
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"


async def test_cors_allows_the_configured_origin(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A browser on a configured origin may open the stream (and resend Last-Event-ID)."""
    preflight = await client.options(
        events_path(str(uuid.uuid4())),
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    user = await insert_user(pg_pool)
    response = await client.get(
        events_path(str(uuid.uuid4())),
        params={"access_token": hs_token(user)},
        headers={"Origin": "https://app.example.com"},
    )
    assert response.status_code == 404
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
