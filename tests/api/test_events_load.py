"""Progress streams under load and failure: 200 clients plus one that stops reading (it is
dropped, the others keep receiving, memory stays bounded); the listener's connection killed
mid-run (streams resume, no change lost), also with a change made while it was down and a
failed first re-read."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Sequence

import asyncpg
import httpx
import pytest

from api.sse.hub import BUFFER
from api.sse.snapshot import Snapshot
from db.repository import CourseRepository
from tests.api.sse_support import Event, Served, events_path, read_events
from tests.api.support import course_row, generation
from tests.factories import bearer, hs_token, insert_course, insert_user, new_id, run_start
from tests.helpers import eventually

CLIENTS = 200
CHANGES = 3  # per course, after the claim


async def claimed(pool: asyncpg.Pool) -> tuple[str, str, str]:
    """A course of a new user, claimed by a (simulated) run: (course, user, run)."""
    user = await insert_user(pool)
    course, run = await insert_course(pool, user), new_id()
    await CourseRepository(pool).begin_generation(
        course, "wf", run, "STRUCTURE_ANALYSIS", run_start()
    )
    return course, user, run


async def follow_until(
    http: httpx.AsyncClient, course: str, user: str, target: int, opened: asyncio.Event
) -> list[int]:
    """Read the course's stream until it reaches seq `target`; the ids seen."""
    seen: list[int] = []
    headers = bearer(hs_token(user))
    async with http.stream("GET", events_path(course), headers=headers) as response:
        assert response.status_code == 200
        async for event in read_events(response):
            seen.append(event.seq)
            opened.set()
            if event.seq >= target:
                break
    return seen


def stalled_client(port: int, course: str, user: str) -> socket.socket:
    """A client that sends its request and then never reads (a tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    request = (
        f"GET {events_path(course)} HTTP/1.1\r\nHost: api.test\r\n"
        f"Authorization: Bearer {hs_token(user)}\r\n\r\n"
    )
    sock.sendall(request.encode())
    sock.setblocking(False)
    return sock


async def flood_until_dropped(served: Served, pool: asyncpg.Pool, course: str, run: str) -> int:
    """Big progress changes of `course` until the gateway drops its stalled stream."""
    repo, hub = CourseRepository(pool), served.state.events.hub
    for count in range(1, 3000):
        message = f"{count} " + "x" * 8000
        await repo.update_progress(course, 1, "in_progress", message, metadata={"run_id": run})
        if count > 10 and hub.subscribers(course) == 0:
            return count
    raise AssertionError("the stalled stream was never dropped")


async def read_to_eof(sock: socket.socket, timeout: float = 30) -> int:
    """Bytes the server still sends before closing the connection."""
    loop, total = asyncio.get_running_loop(), 0
    async with asyncio.timeout(timeout):
        while chunk := await loop.sock_recv(sock, 65536):
            total += len(chunk)
    return total


async def test_a_stalled_client_is_dropped_and_the_others_keep_receiving(
    served: Served, http: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """200 clients on 200 courses receive every change while one client that stopped reading
    is flooded; the stalled stream is dropped and closed, and buffers stay bounded."""
    courses = [await claimed(pg_pool) for _ in range(CLIENTS)]
    stalled_course, stalled_user, stalled_run = await claimed(pg_pool)
    port = int(served.url.rsplit(":", 1)[1])
    sock = stalled_client(port, stalled_course, stalled_user)
    opened = [asyncio.Event() for _ in courses]
    target = 1 + CHANGES
    readers = [
        asyncio.create_task(follow_until(http, course, user, target, ready))
        for (course, user, _), ready in zip(courses, opened, strict=True)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in opened)), 60)
        flood = asyncio.create_task(
            flood_until_dropped(served, pg_pool, stalled_course, stalled_run)
        )
        repo = CourseRepository(pg_pool)
        for step in range(CHANGES):
            await asyncio.gather(
                *(
                    repo.update_progress(c, 1, "in_progress", f"m{step}", metadata={"run_id": r})
                    for c, _, r in courses
                )
            )
        writes = await flood
        seen = await asyncio.wait_for(asyncio.gather(*readers), 60)
    finally:
        for reader in readers:
            reader.cancel()
    assert all(ids == [1, 2, 3, 4] for ids in seen), [s for s in seen if s != [1, 2, 3, 4]][:3]
    hub = served.state.events.hub
    assert hub.subscribers(stalled_course) == 0
    assert hub.buffered() <= hub.subscribers() * BUFFER
    assert writes < 3000
    with contextlib.closing(sock):
        await read_to_eof(sock)  # the server flushes what it had buffered, then closes


async def kill_listeners(pool: asyncpg.Pool) -> int:
    """Terminate the progress listeners' connections to this database; how many."""
    killed = await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'cg-progress-listener' AND datname = current_database()"
    )
    return int(killed)


async def test_streams_survive_a_lost_listener_connection(
    served: Served, http: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """The listener's connection is killed mid-run: it reconnects, the stream resynchronises
    from the row and ends with the run's real final state; ids keep growing."""
    listener = served.state.events.listener
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 0.5})
    headers = bearer(hs_token(user))
    assert (await http.post(generation(course), headers=headers)).status_code == 202
    before = listener.connections
    events: list[Event] = []
    async with http.stream("GET", events_path(course), headers=headers) as response:
        async for event in read_events(response):
            events.append(event)
            if len(events) == 2:
                assert await kill_listeners(pg_pool) >= 1

    async def reconnected() -> None:
        assert listener.connections > before

    await eventually(reconnected, timeout=10)
    seqs = [event.seq for event in events]
    assert seqs == sorted(set(seqs))
    assert [event.event for event in events][-1] == "terminal"
    assert events[-1].data["generationStatus"] == "completed"
    assert events[-1].seq == (await course_row(pg_pool, course))["progress_seq"]
    assert len(events) > 3  # changes after the kill still arrived before the terminal one


async def test_a_change_made_while_the_listener_is_down_reaches_the_stream(
    served: Served, http: httpx.AsyncClient, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener's connection is killed and the course's terminal write lands before the
    listener connects again (no notification of it reaches the gateway); the first re-read
    after the reconnection fails too. The re-read is retried and the waiting stream still gets
    the terminal event, then ends."""
    events_state = served.state.events
    listener, hub = events_state.listener, events_state.hub
    course, user, run = await claimed(pg_pool)
    repo = CourseRepository(pg_pool)
    written = asyncio.Event()
    failed_reads: list[list[str]] = []
    connect, read = listener._connect, hub._read

    async def connect_after_the_write() -> asyncpg.Connection | None:
        if not written.is_set():
            await repo.finish_generation(course, run, "cancelled", "stopped while down")
            written.set()
        return await connect()

    async def read_failing_once(course_ids: Sequence[str]) -> list[Snapshot]:
        if written.is_set() and not failed_reads:
            failed_reads.append(list(course_ids))
            raise ConnectionError("the database is briefly unreachable")
        return await read(course_ids)

    monkeypatch.setattr(listener, "_connect", connect_after_the_write)
    monkeypatch.setattr(hub, "_read", read_failing_once)
    resyncs = listener.resyncs
    events: list[Event] = []
    async with asyncio.timeout(20):
        async with http.stream("GET", events_path(course), headers=bearer(hs_token(user))) as r:
            async for event in read_events(r):
                events.append(event)
                if len(events) == 1:
                    assert await kill_listeners(pg_pool) >= 1
    assert written.is_set()
    assert course in failed_reads[0]
    assert listener.resyncs == resyncs + 1  # the retry, after the failed first attempt
    assert [(e.event, e.seq) for e in events] == [("progress", 1), ("terminal", 2)]
    assert events[-1].data["message"] == "stopped while down"
