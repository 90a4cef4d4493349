"""The repository: row mapping, reads, metrics without foreign keys, summary, typed errors."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime

import asyncpg
import pytest

import embedded
from db.pool import create_pool
from db.repository import CourseRepository, CourseRow, DatabaseUnavailable, InvalidArgument
from tests.factories import insert_course, insert_user, new_id, run_start
from tests.helpers import eventually


async def test_course_row_has_every_column(repo: CourseRepository, pg_pool: asyncpg.Pool) -> None:
    """CourseRow maps every courses column: uuids as str, aware datetimes, jsonb as dict."""
    columns = await pg_pool.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = 'courses'"
    )
    assert {field.name for field in dataclasses.fields(CourseRow)} == {
        record["column_name"] for record in columns
    }
    course_id = await insert_course(pg_pool, progress={"files": []})
    await repo.begin_generation(course_id, "wf", "run-1", "STRUCTURE_ANALYSIS", run_start())
    course = await repo.get_course(course_id)
    assert course is not None
    assert (course.id, course.run_id, course.generation_status) == (course_id, "run-1", "pending")
    assert isinstance(course.user_id, str)
    assert isinstance(course.generation_progress, dict)
    assert isinstance(course.created_at, datetime)
    assert course.created_at.tzinfo is not None


async def test_missing_or_malformed_course_reads_as_none(repo: CourseRepository) -> None:
    """get_course answers None for an unknown id and for a string that is not a UUID."""
    assert await repo.get_course(new_id()) is None
    assert await repo.get_course("not-a-uuid") is None


async def test_user_tier_comes_from_the_profile(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """get_user_tier returns the stored tier, or None without a profile."""
    assert await repo.get_user_tier(await insert_user(pg_pool, "premium")) == "premium"
    assert await repo.get_user_tier(await insert_user(pg_pool)) is None


async def test_profile_tier_is_checked_case_insensitively(pg_pool: asyncpg.Pool) -> None:
    """A tier outside the five (in any case) is refused by the table."""
    with pytest.raises(asyncpg.CheckViolationError):
        await insert_user(pg_pool, "GOLD")


async def test_metrics_about_missing_rows_are_kept(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A metric naming a user and course that do not exist is stored (no foreign keys)."""
    course_id = new_id()
    await repo.record_metric(
        "concurrency_limit_hit",
        "info",
        user_id=new_id(),
        course_id=course_id,
        job_id="j",
        metadata={"tier": "FREE"},
    )
    stored = await pg_pool.fetchrow(
        "SELECT event_type::text, severity::text, job_id, metadata FROM system_metrics"
        " WHERE course_id = $1",
        uuid.UUID(course_id),
    )
    assert stored is not None
    assert tuple(stored) == ("concurrency_limit_hit", "info", "j", {"tier": "FREE"})


async def test_unknown_metric_type_is_refused(repo: CourseRepository) -> None:
    """An event type outside the enum raises InvalidArgument."""
    with pytest.raises(InvalidArgument):
        await repo.record_metric("made_up", "info")


async def test_summary_reports_activity_and_staleness(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """The summary carries status, step, percentage, duration and is_stuck after the limit."""
    course_id = await insert_course(pg_pool)
    await repo.begin_generation(course_id, "wf", "r", "STRUCTURE_ANALYSIS", run_start())
    await repo.update_progress(course_id, 1, "in_progress", "m", metadata={"run_id": "r"})
    summary = await repo.generation_summary(course_id)
    assert summary is not None
    assert (summary["generation_status"], summary["current_step"], summary["percentage"]) == (
        "initializing",
        1,
        10,
    )
    assert summary["is_active"] is True
    assert summary["is_stuck"] is False
    assert summary["duration_seconds"] >= 0
    assert summary["transition_count"] == 2
    await pg_pool.execute(
        "UPDATE courses SET last_progress_update = now() - interval '2 hours' WHERE id = $1",
        uuid.UUID(course_id),
    )
    stale = await repo.generation_summary(course_id, stuck_after_seconds=3600)
    assert stale is not None
    assert stale["is_stuck"]
    assert await repo.generation_summary(new_id()) is None


async def test_status_history_lists_changes_in_order(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """status_history returns old/new status, time, source and metadata, oldest first."""
    course_id = await insert_course(pg_pool)
    await repo.begin_generation(course_id, "wf", "r", "STRUCTURE_ANALYSIS", run_start())
    await repo.finish_generation(course_id, "r", "cancelled", "stop")
    rows = await repo.status_history(course_id)
    assert [(r["old_status"], r["new_status"]) for r in rows] == [
        (None, "pending"),
        ("pending", "cancelled"),
    ]
    assert [r["trigger_source"] for r in rows] == [
        "begin_course_generation",
        "finish_course_generation",
    ]
    assert rows[0]["changed_at"] <= rows[1]["changed_at"]


async def test_unreachable_server_raises_database_unavailable() -> None:
    """With nothing listening, a repository call raises DatabaseUnavailable."""
    url = f"postgresql://postgres@127.0.0.1:{embedded.free_port()}/postgres"
    pool = await create_pool(url, min_size=0, max_size=1)
    try:
        with pytest.raises(DatabaseUnavailable):
            await CourseRepository(pool).get_course(new_id())
    finally:
        await pool.close()


async def test_dropped_connection_raises_database_unavailable(
    database_url: str, pg_pool: asyncpg.Pool
) -> None:
    """A connection killed by the server in the middle of a call surfaces as DatabaseUnavailable."""
    course_id = await insert_course(pg_pool)
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        pid = await pool.fetchval("SELECT pg_backend_pid()")
        async with pg_pool.acquire() as locker, locker.transaction():
            await locker.execute(
                "SELECT 1 FROM courses WHERE id = $1 FOR UPDATE", uuid.UUID(course_id)
            )
            call = asyncio.ensure_future(
                CourseRepository(pool).update_progress(course_id, 1, "in_progress", "m")
            )

            async def waiting_on_the_lock() -> None:
                assert await pg_pool.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
                )

            await eventually(waiting_on_the_lock, timeout=5)
            await pg_pool.execute("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(DatabaseUnavailable):
                await call
    finally:
        await pool.close()


async def test_course_for_reads_the_row_the_callers_tier_and_what_was_undone(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """One query: the same row as `get_course`, the caller's stored tier (not the owner's),
    and a rolled-back course's `undone` for its recorded run only."""
    owner, caller = await insert_user(pg_pool, "premium"), await insert_user(pg_pool, "basic")
    course_id = await insert_course(pg_pool, owner)
    read = await repo.get_course_for(course_id, owner)
    assert read is not None
    assert (read.course, read.caller_tier, read.undone) == (
        await repo.get_course(course_id),
        "premium",
        None,
    )
    other = await repo.get_course_for(course_id, caller)
    assert other is not None
    assert other.caller_tier == "basic"
    no_profile = await repo.get_course_for(course_id, await insert_user(pg_pool))
    assert no_profile is not None
    assert no_profile.caller_tier is None
    assert await repo.get_course_for(new_id(), owner) is None
    assert await repo.get_course_for("not-a-uuid", owner) is None

    undone = ["finish_generation", "release_lease"]
    for status in ("failed", "completed"):
        course = await insert_course(pg_pool, owner, status=status, run_id="run-1")
        for run_id in ("run-0", "run-1"):
            metadata = {"run_id": run_id, "undone": [*undone, run_id]}
            await repo.record_metric("job_rollback", "warn", course_id=course, metadata=metadata)
        read = await repo.get_course_for(course, owner)
        assert read is not None
        assert read.undone == ([*undone, "run-1"] if status == "failed" else None)
