"""The webhook outbox trigger: one queued event per real change of a course with a webhook, in
the change's transaction, addressed to the webhook of the run that made the change."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from db.repository import CourseRepository, StaleRun
from tests.factories import insert_course, new_id, run_start
from tests.integration.db.support import row, step_rows
from tests.webhook_support import settle_leftovers

HOOK = "https://hooks.example.com/a"
OTHER_HOOK = "https://hooks.example.com/b"


@pytest_asyncio.fixture(autouse=True)
async def _settled(pg_pool: asyncpg.Pool) -> AsyncIterator[None]:
    """The events these tests queue are never delivered (no dispatcher runs here)."""
    yield
    await settle_leftovers(pg_pool)


async def outbox(pool: asyncpg.Pool, course_id: str) -> list[dict[str, Any]]:
    records = await pool.fetch(
        "SELECT * FROM public.webhook_outbox WHERE course_id = $1 ORDER BY id", uuid.UUID(course_id)
    )
    return [dict(record) for record in records]


async def test_each_real_change_queues_one_event(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A claimed run with a webhook queues one event per change (none for a repeated or fenced
    write), seq strictly growing, the terminal one typed by the outcome, payload from the row."""
    course_id, run_id = await insert_course(pg_pool), new_id()
    meta = {"run_id": run_id}
    await repo.begin_generation(course_id, "wf", run_id, "STRUCTURE_ANALYSIS", run_start(), HOOK)
    await repo.update_progress(course_id, 1, "in_progress", "one", metadata=meta)
    await repo.update_progress(course_id, 1, "in_progress", "one", metadata=meta)  # no change
    with pytest.raises(StaleRun):
        await repo.update_progress(course_id, 1, "completed", "x", metadata={"run_id": "old"})
    await repo.update_progress(course_id, 1, "completed", "two", metadata=meta)
    await repo.finish_generation(course_id, run_id, "cancelled", "stop")
    events = await outbox(pg_pool, course_id)
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert (await row(pg_pool, course_id))["progress_seq"] == 4
    assert [e["event_type"] for e in events] == ["generation.progress"] * 3 + [
        "generation.cancelled"
    ]
    assert {(e["url"], e["run_id"], e["status"], e["attempts"]) for e in events} == {
        (HOOK, run_id, "pending", 0)
    }
    assert len({e["webhook_id"] for e in events}) == 4
    assert all(e["webhook_id"].startswith("msg_") for e in events)
    last = events[-1]["payload"]
    assert {k: v for k, v in last.items() if k != "occurredAt"} == {
        "type": "generation.cancelled",
        "courseId": course_id,
        "runId": run_id,
        "seq": 4,
        "generationStatus": "cancelled",
        "currentStep": 1,
        "percentage": 20,
        "message": "stop",
    }
    assert last["occurredAt"].endswith("Z")


async def test_course_without_webhook_queues_nothing(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A run started without a webhook leaves the outbox empty."""
    course_id, run_id = await insert_course(pg_pool), new_id()
    await repo.begin_generation(course_id, "wf", run_id, "STRUCTURE_ANALYSIS", run_start())
    await repo.update_progress(course_id, 1, "in_progress", "m", metadata={"run_id": run_id})
    assert await outbox(pg_pool, course_id) == []
    assert (await row(pg_pool, course_id))["webhook_url"] is None


async def test_the_webhook_belongs_to_the_run(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A new claim records its own run's webhook: the superseded run's failure goes to the old
    webhook, the new run's events to the new one, and a run without one clears it."""
    course_id, first, second, third = await insert_course(pg_pool), new_id(), new_id(), new_id()
    await repo.begin_generation(course_id, "wf", first, "STRUCTURE_ANALYSIS", run_start(), HOOK)
    await repo.begin_generation(
        course_id, "wf", second, "STRUCTURE_ANALYSIS", run_start(), OTHER_HOOK
    )
    await repo.finish_generation(course_id, second, "failed", "boom")
    await repo.begin_generation(course_id, "wf", third, "STRUCTURE_ANALYSIS", run_start())
    await repo.update_progress(course_id, 1, "in_progress", "m", metadata={"run_id": third})
    events = [(e["url"], e["run_id"], e["event_type"]) for e in await outbox(pg_pool, course_id)]
    assert events == [
        (HOOK, first, "generation.progress"),
        (HOOK, first, "generation.failed"),  # superseded by the second claim
        (OTHER_HOOK, second, "generation.progress"),
        (OTHER_HOOK, second, "generation.failed"),
    ]
    assert (await row(pg_pool, course_id))["webhook_url"] is None


async def test_the_setting_does_not_outlive_the_claim(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """The webhook travels in a transaction-local setting: a later claim on the same pooled
    connection without a webhook does not inherit it."""
    first, second = await insert_course(pg_pool), await insert_course(pg_pool)
    await repo.begin_generation(first, "wf", new_id(), "STRUCTURE_ANALYSIS", run_start(), HOOK)
    await repo.begin_generation(second, "wf", new_id(), "STRUCTURE_ANALYSIS", run_start())
    assert (await row(pg_pool, first))["webhook_url"] == HOOK
    assert (await row(pg_pool, second))["webhook_url"] is None


async def test_a_claim_with_its_first_steps_queues_each_change_for_the_run_webhook(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """The claim made in one call with its first step writes records the run's webhook and
    queues one event per change, in order, as the same calls one by one do."""
    course_id, run_id = await insert_course(pg_pool), new_id()
    writes = step_rows(run_id, [(1, "in_progress"), (1, "completed"), (2, "in_progress")])
    await repo.begin_generation(
        course_id, "wf", run_id, "STRUCTURE_ANALYSIS", run_start(), HOOK, writes
    )
    events = await outbox(pg_pool, course_id)
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert {(e["url"], e["run_id"]) for e in events} == {(HOOK, run_id)}
    assert [e["status"] for e in events] == ["pending"] * 4
