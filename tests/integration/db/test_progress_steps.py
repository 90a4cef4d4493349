"""`update_course_progress_steps`: a run's adjacent progress writes in one call, all or none."""

from __future__ import annotations

import asyncpg
import pytest

from db.repository import CourseRepository, InvalidArgument, StaleRun
from tests.factories import insert_course, new_id, run_start
from tests.integration.db.support import (
    claimed_course,
    history,
    row,
    step_rows,
    without_times,
)

BEFORE = [(1, "in_progress"), (1, "completed"), (2, "in_progress")]


async def _twins(repo: CourseRepository, pool: asyncpg.Pool) -> tuple[str, str, str]:
    """Two fresh courses claimed by the same run and moved to step 2 in progress (the same
    run id, so their documents can be compared); returns (course, course, run id)."""
    one, run_id = await claimed_course(repo, pool, steps=BEFORE)
    other = await insert_course(pool)
    await repo.begin_generation(other, "wf", run_id, "STRUCTURE_ANALYSIS", run_start())
    await repo.update_progress_steps(other, step_rows(run_id, BEFORE))
    return one, other, run_id


async def test_steps_in_one_call_are_the_calls_one_by_one(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """The row, its status history and its sequence end exactly as the same writes made one
    at a time leave them."""
    pair = [(2, "completed"), (3, "in_progress")]
    separate, together, run_id = await _twins(repo, pg_pool)
    for step, status in pair:
        await repo.update_progress(separate, step, status, "m", metadata={"run_id": run_id})
    document = await repo.update_progress_steps(together, step_rows(run_id, pair))
    one, other = await row(pg_pool, separate), await row(pg_pool, together)
    assert document is not None
    assert without_times(document) == without_times(one["generation_progress"])
    assert without_times(other["generation_progress"]) == without_times(document)
    assert (other["status"], other["progress_seq"]) == (one["status"], one["progress_seq"])
    assert other["status"] == "generating_structure"
    assert await history(pg_pool, together) == await history(pg_pool, separate)


async def test_a_failure_carries_its_error_fields(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A failed step's error message and details reach the row as the single call does."""
    separate, together, run_id = await _twins(repo, pg_pool)
    details = {"stage": "structure_analysis", "attempts": 3}
    await repo.update_progress(
        separate, 2, "failed", "m", "stage failed", details, metadata={"run_id": run_id}
    )
    rows = step_rows(run_id, [(2, "failed")], error_message="stage failed", error_details=details)
    await repo.update_progress_steps(together, rows)
    one, other = await row(pg_pool, separate), await row(pg_pool, together)
    assert without_times(other["generation_progress"]) == without_times(one["generation_progress"])
    assert (other["error_message"], other["error_details"]) == ("stage failed", details)


async def test_a_refused_write_takes_the_whole_call_back(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """The second write refused (no step 9): the first, valid on its own, is not kept."""
    course_id, run_id = await claimed_course(repo, pg_pool, steps=BEFORE)
    before = await row(pg_pool, course_id)
    with pytest.raises(InvalidArgument):
        await repo.update_progress_steps(
            course_id, step_rows(run_id, [(2, "completed"), (9, "in_progress")])
        )
    assert await row(pg_pool, course_id) == before


async def test_another_runs_writes_change_nothing(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """Writes fenced by a run that no longer holds the course raise `StaleRun`."""
    course_id, old_run = await claimed_course(repo, pg_pool, steps=BEFORE)
    new_run = new_id()
    await repo.begin_generation(course_id, "wf", new_run, "STRUCTURE_ANALYSIS", run_start())
    before = await row(pg_pool, course_id)
    with pytest.raises(StaleRun):
        await repo.update_progress_steps(
            course_id, step_rows(old_run, [(2, "completed"), (3, "in_progress")])
        )
    assert await row(pg_pool, course_id) == before


async def test_an_unknown_course_is_none_and_no_writes_is_refused(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    assert (
        await repo.update_progress_steps(new_id(), step_rows(new_id(), [(1, "in_progress")]))
        is None
    )
    course_id, _ = await claimed_course(repo, pg_pool)
    with pytest.raises(InvalidArgument):
        await repo.update_progress_steps(course_id, [])
