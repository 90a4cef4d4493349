"""The generation_status trigger: every allowed move, refused moves, history on change only."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from db.repository import CourseRepository, InvalidTransition
from tests.factories import insert_course
from tests.integration.db.support import STATUSES, allowed_targets, history

ALLOWED = [(old, new) for old in (None, *STATUSES) for new in sorted(allowed_targets(old) - {old})]
FORBIDDEN_SAMPLE = [
    ("pending", "completed"),
    ("pending", "analyzing_task"),
    ("initializing", "generating_structure"),
    ("analyzing_task", "processing_documents"),
    ("generating_content", "generating_structure"),
    ("finalizing", "pending"),
    ("completed", "failed"),
    ("completed", "cancelled"),
    ("failed", "cancelled"),
    ("cancelled", "initializing"),
    ("failed", None),
]


async def set_status(pool: asyncpg.Pool, course_id: str, status: str | None) -> None:
    await pool.execute(
        "UPDATE public.courses SET generation_status = $2::public.generation_status WHERE id = $1",
        uuid.UUID(course_id),
        status,
    )


@pytest.mark.parametrize(("old", "new"), ALLOWED)
async def test_allowed_move_is_accepted_and_logged(
    pg_pool: asyncpg.Pool, old: str | None, new: str
) -> None:
    """Each allowed move succeeds and writes one history row."""
    course_id = await insert_course(pg_pool, status=old)
    before = await history(pg_pool, course_id)
    await set_status(pg_pool, course_id, new)
    assert await history(pg_pool, course_id) == [*before, (old, new)]


@pytest.mark.parametrize(("old", "new"), FORBIDDEN_SAMPLE)
async def test_forbidden_move_is_refused_with_the_error_text(
    pg_pool: asyncpg.Pool, old: str, new: str | None
) -> None:
    """A forbidden move raises CG001 naming both states and the allowed targets."""
    course_id = await insert_course(pg_pool, status=old)
    with pytest.raises(asyncpg.PostgresError) as refused:
        await set_status(pg_pool, course_id, new)
    assert refused.value.sqlstate == "CG001"
    message = str(refused.value)
    assert message.startswith("invalid generation_status transition")
    assert f"{old} -> {new or 'NULL'}" in message
    assert all(target in message for target in allowed_targets(old) if target)
    assert await history(pg_pool, course_id) == [(None, old)]


async def test_every_pair_matches_the_model(pg_pool: asyncpg.Pool) -> None:
    """All 100 status pairs are accepted or refused exactly as `allowed_targets` models it."""
    for old in STATUSES:
        for new in STATUSES:
            course_id = await insert_course(pg_pool, status=old)
            try:
                await set_status(pg_pool, course_id, new)
                accepted = True
            except asyncpg.PostgresError:
                accepted = False
            assert accepted == (new == old or new in allowed_targets(old)), (old, new)


async def test_same_status_writes_no_history(pg_pool: asyncpg.Pool) -> None:
    """Setting the current status again (or touching other columns) logs nothing."""
    course_id = await insert_course(pg_pool, status="initializing")
    await set_status(pg_pool, course_id, "initializing")
    await pg_pool.execute("UPDATE courses SET title = 'new' WHERE id = $1", uuid.UUID(course_id))
    assert await history(pg_pool, course_id) == [(None, "initializing")]


async def test_repository_surfaces_invalid_transition(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """The repository turns the trigger's CG001 into InvalidTransition."""
    course_id = await insert_course(pg_pool, status="cancelled")
    with pytest.raises(InvalidTransition, match="cancelled -> initializing"):
        await repo.update_progress(course_id, 1, "in_progress", "m")
