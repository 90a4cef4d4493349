"""The dispatcher drains the outbox: signed events in order per course, each delivered at least
once under one webhook-id, retried with backoff, given up after the budget, coalesced only
when behind, never to a refused address, and never twice in parallel by two dispatchers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest_asyncio

import embedded
import observability
from db.repository import CourseRepository
from tests.api.observed import scrape, value
from tests.factories import insert_course, insert_user, make_settings, new_id, run_start
from tests.helpers import eventually
from tests.integration.db.support import FULL_RUN
from tests.webhook_support import (
    MASTER_SECRET,
    LoopbackOnly,
    Receiver,
    dispatcher_for,
    settle_leftovers,
)
from webhooks.signing import user_secret
from worker import webhook_dispatcher


@pytest_asyncio.fixture
async def transport(pg_pool: asyncpg.Pool) -> AsyncIterator[LoopbackOnly]:
    await settle_leftovers(pg_pool)
    loopback = LoopbackOnly()
    yield loopback
    await settle_leftovers(pg_pool)
    assert loopback.beyond == []


async def run_with_webhook(
    pool: asyncpg.Pool, url: str, steps: list[tuple[int, str]] = FULL_RUN
) -> tuple[str, str]:
    """A course of a new user, claimed with webhook `url`, driven through `steps`; returns
    (course id, user id). Its events: the claim, then one per step write."""
    repo = CourseRepository(pool)
    user = await insert_user(pool)
    course, run = await insert_course(pool, user), new_id()
    await repo.begin_generation(course, "wf", run, "STRUCTURE_ANALYSIS", run_start(), url)
    for step, status in steps:
        await repo.update_progress(
            course, step, status, f"{step} {status}", metadata={"run_id": run}
        )
    return course, user


async def outbox_states(pool: asyncpg.Pool, course: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT status FROM public.webhook_outbox WHERE course_id = $1 ORDER BY id",
        uuid.UUID(course),
    )
    return [row["status"] for row in rows]


async def test_signed_events_arrive_in_order(
    pg_pool: asyncpg.Pool, database_url: str, transport: LoopbackOnly
) -> None:
    """A whole run's eleven events reach the receiver in seq order, each verified with the
    owner's secret, the last one generation.completed; all rows end delivered."""
    async with Receiver().running() as receiver:
        course, user = await run_with_webhook(pg_pool, receiver.url)
        async with dispatcher_for(pg_pool, transport).running(database_url):

            async def all_there() -> None:
                assert len(set(receiver.ids())) == 11

            await eventually(all_there, timeout=15)
    events = receiver.verified(user_secret(MASTER_SECRET, user))
    assert [e["seq"] for e in events] == list(range(1, 12))
    assert {e["courseId"] for e in events} == {course}
    assert [e["type"] for e in events] == ["generation.progress"] * 10 + ["generation.completed"]
    assert events[-1]["percentage"] == 100
    assert await outbox_states(pg_pool, course) == ["delivered"] * 11


async def test_failures_are_retried_under_the_same_id(
    pg_pool: asyncpg.Pool, database_url: str, transport: LoopbackOnly
) -> None:
    """A receiver failing twice then succeeding gets every event; after deduplicating by
    webhook-id each arrives once, in order. Each attempt is counted by its result."""
    attempts: list[str] = []
    async with Receiver(fail_first=2).running() as receiver:
        course, user = await run_with_webhook(pg_pool, receiver.url, FULL_RUN[:4])
        async with dispatcher_for(pg_pool, transport, attempts).running(database_url):

            async def all_delivered() -> None:
                assert await outbox_states(pg_pool, course) == ["delivered"] * 5

            await eventually(all_delivered, timeout=15)
    ids = receiver.ids()
    assert Counter(ids)[ids[0]] >= 3  # failed, failed, delivered
    unique = list(dict.fromkeys(ids))
    assert len(unique) == 5
    events = receiver.verified(user_secret(MASTER_SECRET, user))
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert Counter(attempts)["delivered"] >= 5
    assert Counter(attempts)["failed"] >= 2


async def test_an_event_is_given_up_after_the_budget(
    pg_pool: asyncpg.Pool, database_url: str, transport: LoopbackOnly
) -> None:
    """A receiver that always fails: the event is retried, then marked failed with the last
    error once its budget (counted from the change) is spent; the next event of the course goes
    out after it."""
    async with Receiver(fail_first=10**6).running() as receiver:
        course, _ = await run_with_webhook(pg_pool, receiver.url, FULL_RUN[:1])
        dispatcher = dispatcher_for(pg_pool, transport, retry_seconds=0.5)
        async with dispatcher.running(database_url):

            async def given_up() -> None:
                assert await outbox_states(pg_pool, course) == ["failed", "failed"]

            await eventually(given_up, timeout=15)
    errors = await pg_pool.fetch(
        "SELECT last_error, attempts FROM public.webhook_outbox WHERE course_id = $1 ORDER BY id",
        uuid.UUID(course),
    )
    assert {row["last_error"] for row in errors} == {"HTTP 500: "}
    assert errors[0]["attempts"] >= 2  # retried; the second's budget ran while it waited


async def test_a_refused_address_fails_at_once(
    pg_pool: asyncpg.Pool, database_url: str, transport: LoopbackOnly
) -> None:
    """A webhook on a loopback address that is not allow-listed is refused for good on the
    first attempt, without a connection."""
    course, _ = await run_with_webhook(pg_pool, "http://127.0.0.2:9/hook", FULL_RUN[:1])
    async with dispatcher_for(pg_pool, transport).running(database_url):

        async def refused() -> None:
            assert await outbox_states(pg_pool, course) == ["failed", "failed"]

        await eventually(refused, timeout=10)
    row = await pg_pool.fetchrow(
        "SELECT last_error, attempts FROM public.webhook_outbox WHERE course_id = $1 LIMIT 1",
        uuid.UUID(course),
    )
    assert row is not None
    assert row["attempts"] == 1
    assert row["last_error"].startswith("refused: ")


async def test_a_dispatcher_behind_coalesces_progress_but_not_the_outcome(
    pg_pool: asyncpg.Pool, database_url: str, transport: LoopbackOnly
) -> None:
    """Events queued long ago: consecutive progress events collapse into the latest one; the
    terminal event is still delivered."""
    async with Receiver().running() as receiver:
        course, user = await run_with_webhook(pg_pool, receiver.url)
        await pg_pool.execute(
            "UPDATE public.webhook_outbox SET created_at = now() - interval '1 minute'"
            " WHERE course_id = $1",
            uuid.UUID(course),
        )
        async with dispatcher_for(pg_pool, transport).running(database_url):

            async def settled() -> None:
                assert "pending" not in await outbox_states(pg_pool, course)

            await eventually(settled, timeout=15)
    events = receiver.verified(user_secret(MASTER_SECRET, user))
    assert [(e["seq"], e["type"]) for e in events] == [
        (10, "generation.progress"),
        (11, "generation.completed"),
    ]
    assert await outbox_states(pg_pool, course) == ["superseded"] * 9 + ["delivered"] * 2


async def test_two_dispatchers_keep_each_course_in_order(
    pg_pool: asyncpg.Pool, database_url: str, transport: LoopbackOnly
) -> None:
    """Two dispatchers on twelve courses: every event arrives, each course's in seq order."""
    async with Receiver().running() as receiver:
        courses = await asyncio.gather(
            *(run_with_webhook(pg_pool, receiver.url, FULL_RUN[:4]) for _ in range(12))
        )
        first, second = dispatcher_for(pg_pool, transport), dispatcher_for(pg_pool, transport)
        async with first.running(database_url), second.running(database_url):

            async def all_there() -> None:
                assert len(set(receiver.ids())) == 12 * 5

            await eventually(all_there, timeout=20)
    by_course: dict[str, list[int]] = {course: [] for course, _ in courses}
    for body in (_payload(r.body) for r in receiver.first_deliveries()):
        by_course[body["courseId"]].append(body["seq"])
    assert all(seqs == [1, 2, 3, 4, 5] for seqs in by_course.values()), by_course


async def test_the_workers_dispatcher_counts_attempts_on_its_metrics_port(
    pg_pool: asyncpg.Pool, database_url: str, transport: LoopbackOnly
) -> None:
    """The dispatcher as the worker builds it (`worker.webhook_dispatcher` on the runtime that
    serves `WORKER_METRICS_PORT`): a scrape of that port sees
    `coursegen_webhook_deliveries_total{result}` move by each attempt, one failed and two
    delivered for a receiver failing its first request."""
    port = embedded.free_port()
    runtime = observability.metrics_runtime(port, "127.0.0.1")
    settings = make_settings(
        ALLOW_HTTP_WEBHOOKS="true", WEBHOOK_ALLOW_HOSTS="127.0.0.1", WEBHOOK_SECRET=MASTER_SECRET
    )
    metrics, deliveries = f"http://127.0.0.1:{port}/metrics", "coursegen_webhook_deliveries_total"
    async with httpx.AsyncClient() as http, Receiver(fail_first=1).running() as receiver:
        before = await scrape(http, metrics)
        course, _ = await run_with_webhook(pg_pool, receiver.url, FULL_RUN[:1])
        async with webhook_dispatcher(settings, pg_pool, runtime).running(database_url):

            async def counted() -> None:
                assert await outbox_states(pg_pool, course) == ["delivered"] * 2
                after = await scrape(http, metrics)
                moved = {
                    result: value(after, deliveries, result=result)
                    - value(before, deliveries, result=result)
                    for result in ("delivered", "failed")
                }
                assert moved == {"delivered": 2, "failed": 1}

            await eventually(counted, timeout=15)


def _payload(body: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(body)
    return value
