"""finish_course_generation: failure and cancellation from every non-terminal status."""

from __future__ import annotations

import asyncpg
import pytest

from db.repository import CourseRepository, InvalidArgument, StaleRun
from tests.factories import insert_course, new_id
from tests.integration.db.support import (
    FULL_RUN,
    NON_TERMINAL,
    TS,
    claimed_course,
    history,
    masked,
    row,
)

# The progress writes that bring a DOCUMENT_PROCESSING run to each status, with the step then
# in progress (the one a failure marks).
ROUTE = FULL_RUN[:9]
WRITES_TO_REACH = {
    "pending": 0,
    "initializing": 1,
    "processing_documents": 3,
    "generating_structure": 5,
    "generating_content": 7,
    "finalizing": 9,
}
# The step a finish marks: the one in progress (for pending, the first not completed).
FAILING_STEP = {
    "pending": 1,
    "initializing": 1,
    "processing_documents": 2,
    "analyzing_task": 2,
    "generating_structure": 3,
    "generating_content": 4,
    "finalizing": 5,
}


async def claimed_at(
    repo: CourseRepository, pg_pool: asyncpg.Pool, status: str
) -> tuple[str, str, str]:
    """A course claimed for a run and driven to `status`; returns (course, run, type)."""
    generation_type = "STRUCTURE_ANALYSIS" if status == "analyzing_task" else "DOCUMENT_PROCESSING"
    writes = 3 if status == "analyzing_task" else WRITES_TO_REACH[status]
    course_id, run_id = await claimed_course(repo, pg_pool, generation_type, ROUTE[:writes])
    assert (await row(pg_pool, course_id))["status"] == status
    return course_id, run_id, generation_type


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
@pytest.mark.parametrize("status", NON_TERMINAL)
async def test_finish_from_every_non_terminal_status(
    repo: CourseRepository, pg_pool: asyncpg.Pool, status: str, outcome: str
) -> None:
    """One call marks the running step failed and sets the outcome, errors and completion."""
    course_id, run_id, _ = await claimed_at(repo, pg_pool, status)
    before = await row(pg_pool, course_id)
    details = {"code": "E1"}
    document = await repo.finish_generation(course_id, run_id, outcome, "Причина", details)
    assert document is not None
    step = masked(document)["steps"][FAILING_STEP[status] - 1]
    assert step["status"] == "failed"
    assert (step["error"], step["error_details"], step["completed_at"]) == ("Причина", details, TS)
    assert document["message"] == "Причина"
    assert document["percentage"] == before["generation_progress"]["percentage"]
    after = await row(pg_pool, course_id)
    assert (after["status"], after["error_message"], after["error_details"]) == (
        outcome,
        "Причина",
        details,
    )
    assert after["generation_completed_at"] is not None
    assert after["progress_seq"] == before["progress_seq"] + 1
    assert (await history(pg_pool, course_id))[-1] == (status, outcome)


async def test_finish_marks_the_first_unfinished_step_when_none_runs(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """With no step in progress, the first step not completed is the one marked failed."""
    course_id, run_id, _ = await claimed_at(repo, pg_pool, "initializing")
    await repo.update_progress(course_id, 1, "completed", "m", metadata={"run_id": run_id})
    document = await repo.finish_generation(
        course_id, run_id, "cancelled", "Отменено пользователем"
    )
    assert document is not None
    assert [step["status"] for step in document["steps"]] == [
        "completed",
        "failed",
        "pending",
        "pending",
        "pending",
    ]
    assert document["steps"][1]["error"] == "Отменено пользователем"


@pytest.mark.parametrize("terminal", ["completed", "failed", "cancelled"])
async def test_finish_on_a_terminal_course_is_a_noop(
    repo: CourseRepository, pg_pool: asyncpg.Pool, terminal: str
) -> None:
    """A course already completed, failed or cancelled is left exactly as it is."""
    course_id, run_id, _ = await claimed_at(repo, pg_pool, "finalizing")
    if terminal == "completed":
        await repo.update_progress(course_id, 5, "completed", "m", metadata={"run_id": run_id})
    else:
        await repo.finish_generation(course_id, run_id, terminal, "first")
    before = await row(pg_pool, course_id)
    for outcome in ("failed", "cancelled"):
        document = await repo.finish_generation(course_id, run_id, outcome, "second")
        assert document == before["generation_progress"]
    assert await row(pg_pool, course_id) == before


@pytest.mark.parametrize("run_id", ["stale-run", None])
async def test_finish_is_fenced_by_run_id(
    repo: CourseRepository, pg_pool: asyncpg.Pool, run_id: str | None
) -> None:
    """A finish carrying another run's id, or none, raises StaleRun and changes nothing."""
    course_id, _, _ = await claimed_at(repo, pg_pool, "initializing")
    before = await row(pg_pool, course_id)
    with pytest.raises(StaleRun, match="stale run"):
        await repo.finish_generation(course_id, run_id, "cancelled", "late")
    assert await row(pg_pool, course_id) == before


async def test_finish_without_run_id_applies_to_a_never_claimed_course(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A never-claimed course (no run id) can be failed by a write without a run id."""
    course_id = await insert_course(pg_pool)
    document = await repo.finish_generation(course_id, None, "failed", "broken")
    assert document is not None
    assert document["steps"][0]["status"] == "failed"
    assert (await row(pg_pool, course_id))["status"] == "failed"


async def test_finish_of_an_unknown_course_is_null(repo: CourseRepository) -> None:
    """Finishing a course that does not exist returns None."""
    assert await repo.finish_generation(new_id(), new_id(), "failed", "x") is None


async def test_finish_refuses_an_unknown_outcome(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """Only failed and cancelled are outcomes of finish; anything else is refused first."""
    with pytest.raises(InvalidArgument, match="invalid outcome"):
        await repo.finish_generation(new_id(), None, "completed", "x")
