"""Notifications on channel course_progress: one per real change, with growing seq, carrying the
whole state a progress stream reports; the short form when that would be too big."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from db.repository import CourseRepository, StaleRun
from tests.factories import insert_course, new_id, run_start
from tests.helpers import eventually
from tests.integration.db.support import row


@contextlib.asynccontextmanager
async def notifications(database_url: str, course_id: str) -> AsyncIterator[list[dict[str, Any]]]:
    """The course_progress payloads of `course_id`, decoded, as they arrive while inside."""
    received: list[dict[str, Any]] = []

    def on_notify(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        message = json.loads(str(payload))
        if message["courseId"] == course_id:
            received.append(message)

    listener = await asyncpg.connect(database_url)
    await listener.add_listener("course_progress", on_notify)
    try:
        yield received
    finally:
        await listener.close()


async def test_listener_receives_strictly_growing_seq(
    repo: CourseRepository, pg_pool: asyncpg.Pool, database_url: str
) -> None:
    """LISTEN sees one payload per real change, seq strictly growing, none for repeats."""
    course_id, run_id = await insert_course(pg_pool), new_id()
    async with notifications(database_url, course_id) as received:
        meta = {"run_id": run_id}
        await repo.begin_generation(course_id, "wf", run_id, "STRUCTURE_ANALYSIS", run_start())
        await repo.update_progress(course_id, 1, "in_progress", "a", metadata=meta)
        await repo.update_progress(course_id, 1, "in_progress", "a", metadata=meta)  # repeat
        with pytest.raises(StaleRun):  # fenced: refused, nothing published
            await repo.update_progress(course_id, 1, "in_progress", "a", metadata={"run_id": "old"})
        await repo.update_progress(course_id, 1, "completed", "b", metadata=meta)
        await repo.update_progress(course_id, 2, "in_progress", "c", metadata=meta)
        await repo.finish_generation(course_id, run_id, "cancelled", "stop")
        await repo.finish_generation(course_id, run_id, "cancelled", "stop")  # no-op

        async def five_arrived() -> None:
            assert len(received) >= 5

        await eventually(five_arrived, timeout=5)
    seqs = [message["seq"] for message in received]
    assert seqs == sorted(set(seqs))
    assert len(seqs) == 5
    assert seqs[-1] == (await row(pg_pool, course_id))["progress_seq"]
    assert [m["generationStatus"] for m in received] == [
        "pending",
        "initializing",
        "initializing",
        "analyzing_task",
        "cancelled",
    ]
    assert [(m["percentage"], m["currentStep"]) for m in received] == [
        (0, 1),
        (10, 1),
        (20, 1),
        (30, 2),
        (30, 2),
    ]
    assert [m["message"] for m in received] == ["", "a", "b", "c", "stop"]
    assert {(m["workflowId"], m["runId"]) for m in received} == {("wf", run_id)}
    assert all("seq" not in key for key in (await row(pg_pool, course_id))["generation_progress"])


async def test_a_state_too_big_to_notify_sends_the_short_form(
    repo: CourseRepository, pg_pool: asyncpg.Pool, database_url: str
) -> None:
    """NOTIFY refuses payloads of 8000 bytes or more: a write whose full notification would be
    that big (a long message) still commits and notifies {courseId, seq}; the next short
    message gets the full form again."""
    course_id, run_id = await insert_course(pg_pool), new_id()
    async with notifications(database_url, course_id) as received:
        meta = {"run_id": run_id}
        await repo.begin_generation(course_id, "wf", run_id, "STRUCTURE_ANALYSIS", run_start())
        for message in ("ю" * 3800, "ю" * 4000, "x" * 7990, "ok"):  # 7600, 8000, 7990 bytes
            await repo.update_progress(course_id, 1, "in_progress", message, metadata=meta)

        async def five_arrived() -> None:
            assert len(received) >= 5

        await eventually(five_arrived, timeout=5)
    assert [m["seq"] for m in received] == [1, 2, 3, 4, 5]
    assert [len(m) for m in received] == [8, 8, 2, 2, 8]
    assert received[1]["message"] == "ю" * 3800
    assert received[4]["message"] == "ok"


async def test_writes_in_one_call_each_publish_their_change(
    repo: CourseRepository, pg_pool: asyncpg.Pool, database_url: str
) -> None:
    """`update_course_progress_steps` publishes one payload per write, in order, as the calls
    one by one do (a listener never misses the step that completed)."""
    course_id, run_id = await insert_course(pg_pool), new_id()
    meta = {"run_id": run_id}
    await repo.begin_generation(course_id, "wf", run_id, "STRUCTURE_ANALYSIS", run_start())
    async with notifications(database_url, course_id) as received:
        writes = [(1, "in_progress"), (1, "completed"), (2, "in_progress")]
        rows = [
            {"step_id": step, "status": status, "message": f"{step} {status}", "metadata": meta}
            for step, status in writes
        ]
        await repo.update_progress_steps(course_id, rows)

        async def three_arrived() -> None:
            assert len(received) >= 3

        await eventually(three_arrived, timeout=5)
    assert [m["message"] for m in received] == [f"{s} {st}" for s, st in writes]
    seqs = [m["seq"] for m in received]
    assert seqs == sorted(set(seqs))
    assert seqs[-1] == (await row(pg_pool, course_id))["progress_seq"]
