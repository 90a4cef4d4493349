"""begin_course_generation: claims, reclaims, supersedes, idempotency, unknown courses."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from db.repository import CourseRepository, InvalidArgument, StaleRun
from tests.factories import insert_course, new_id, run_start
from tests.integration.db.support import (
    FULL_RUN,
    claimed_course,
    expected_document,
    history,
    row,
    step_rows,
    without_times,
)


async def run_to_completion(repo: CourseRepository, course_id: str, run_id: str) -> None:
    await repo.begin_generation(course_id, "wf", run_id, "DOCUMENT_PROCESSING", run_start())
    for step, status in FULL_RUN:
        await repo.update_progress(course_id, step, status, "m", metadata={"run_id": run_id})


async def test_claim_of_a_completed_course_resets_it(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A new run claiming a completed course resets the document and logs completed -> pending."""
    extra = {"files": [{"name": "a.pdf"}], "simulation": {"stage_seconds": 0}}
    course_id, first_run = await insert_course(pg_pool, progress=extra), new_id()
    await run_to_completion(repo, course_id, first_run)
    before = await row(pg_pool, course_id)
    assert before["status"] == "completed"
    second_run = new_id()
    document = await repo.begin_generation(
        course_id, "wf-2", second_run, "STRUCTURE_ANALYSIS", run_start()
    )
    assert document == expected_document(False) | extra
    after = await row(pg_pool, course_id)
    assert after["status"] == "pending"
    assert (after["run_id"], after["workflow_id"]) == (second_run, "wf-2")
    assert after["generation_completed_at"] is None
    assert after["error_message"] is None
    assert after["error_details"] is None
    assert after["generation_started_at"] > before["generation_started_at"]
    assert after["progress_seq"] == before["progress_seq"] + 1
    assert (await history(pg_pool, course_id))[-1] == ("completed", "pending")


@pytest.mark.parametrize("terminal", ["failed", "cancelled"])
async def test_claim_after_failure_or_cancel(
    repo: CourseRepository, pg_pool: asyncpg.Pool, terminal: str
) -> None:
    """A failed or cancelled course is claimed straight back to pending."""
    course_id, first_run = await claimed_course(repo, pg_pool)
    await repo.finish_generation(course_id, first_run, terminal, "stop", {"why": "test"})
    document = await repo.begin_generation(
        course_id, "wf", new_id(), "STRUCTURE_ANALYSIS", run_start()
    )
    assert document == expected_document(False)
    after = await row(pg_pool, course_id)
    assert (after["status"], after["error_message"], after["error_details"]) == (
        "pending",
        None,
        None,
    )
    assert (await history(pg_pool, course_id))[-2:] == [
        ("pending", terminal),
        (terminal, "pending"),
    ]


async def test_claim_supersedes_a_non_terminal_run(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A course left mid-run by a closed run is failed as superseded, then claimed."""
    course_id, old_run = await claimed_course(repo, pg_pool, steps=FULL_RUN[:3])
    seq = (await row(pg_pool, course_id))["progress_seq"]
    new_run = new_id()
    document = await repo.begin_generation(
        course_id, "wf", new_run, "STRUCTURE_ANALYSIS", run_start()
    )
    assert document == expected_document(False)
    assert (await history(pg_pool, course_id))[-2:] == [
        ("analyzing_task", "failed"),
        ("failed", "pending"),
    ]
    records = await repo.status_history(course_id)
    assert records[-2]["metadata"]["error_message"] == "superseded by a new run"
    assert records[-2]["metadata"]["run_id"] == old_run
    assert records[-1]["metadata"]["run_id"] == new_run
    after = await row(pg_pool, course_id)
    assert (after["status"], after["run_id"], after["progress_seq"]) == (
        "pending",
        new_run,
        seq + 2,
    )


async def test_claim_of_a_never_started_course(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A course with no status and no document gets the initial document and NULL -> pending."""
    course_id = await insert_course(pg_pool)
    document = await repo.begin_generation(
        course_id, "wf", new_id(), "DOCUMENT_PROCESSING", run_start()
    )
    assert document == expected_document(True)
    assert await history(pg_pool, course_id) == [(None, "pending")]


async def test_same_run_claiming_again_writes_nothing(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """Repeating a claim with the same run id returns the document and changes nothing."""
    course_id, run_id = await claimed_course(repo, pg_pool)
    progressed = await repo.update_progress(
        course_id, 1, "in_progress", "m", metadata={"run_id": run_id}
    )
    before = await row(pg_pool, course_id)
    again = await repo.begin_generation(course_id, "wf", run_id, "STRUCTURE_ANALYSIS", run_start())
    assert again == progressed
    assert await row(pg_pool, course_id) == before
    assert len(await history(pg_pool, course_id)) == 2


async def test_claim_of_an_unknown_course_is_null(repo: CourseRepository) -> None:
    """Claiming a course that does not exist returns None."""
    assert (
        await repo.begin_generation(new_id(), "wf", new_id(), "STRUCTURE_ANALYSIS", run_start())
        is None
    )


@pytest.mark.parametrize(
    ("generation_type", "run_id"), [("BOGUS", "r"), ("STRUCTURE_ANALYSIS", "")]
)
async def test_claim_refuses_bad_arguments(
    repo: CourseRepository, pg_pool: asyncpg.Pool, generation_type: str, run_id: str
) -> None:
    """An unknown generation type or an empty run id is refused and changes nothing."""
    course_id = await insert_course(pg_pool)
    with pytest.raises(InvalidArgument):
        await repo.begin_generation(course_id, "wf", run_id, generation_type, run_start())
    assert (await row(pg_pool, course_id))["progress_seq"] == 0


async def test_late_writes_of_an_old_run_never_touch_the_new_one(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """After a new run claims, every write carrying the old run id raises StaleRun and changes
    nothing."""
    course_id, old_run = await claimed_course(repo, pg_pool)
    new_run = new_id()
    await repo.begin_generation(course_id, "wf", new_run, "STRUCTURE_ANALYSIS", run_start())
    await repo.update_progress(course_id, 1, "in_progress", "new", metadata={"run_id": new_run})
    before = await row(pg_pool, course_id)
    old = {"run_id": old_run}
    writes = [
        repo.update_progress(course_id, 2, "in_progress", "old", metadata=old),
        repo.update_progress(course_id, 1, "failed", "old", "boom", metadata=old),
        repo.finish_generation(course_id, old_run, "cancelled", "old"),
    ]
    for write in writes:
        with pytest.raises(StaleRun, match=f"belongs to run {new_run}, not run {old_run}"):
            await write
    assert await row(pg_pool, course_id) == before


async def test_a_late_claim_by_an_older_run_is_refused(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A claim by a run that started before the recorded one (a stuck attempt of an old run)
    raises StaleRun and leaves the course with the newer run."""
    course_id = await insert_course(pg_pool)
    old_run, old_start = new_id(), run_start()
    new_run = new_id()
    await repo.begin_generation(course_id, "wf", new_run, "STRUCTURE_ANALYSIS", run_start())
    before = await row(pg_pool, course_id)
    with pytest.raises(StaleRun, match="stale run"):
        await repo.begin_generation(course_id, "wf", old_run, "STRUCTURE_ANALYSIS", old_start)
    assert await row(pg_pool, course_id) == before


async def test_concurrent_writes_lose_nothing(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """Twenty concurrent progress writes of one run serialise: each bumps seq exactly once."""
    course_id, run_id = await claimed_course(repo, pg_pool)
    writes = [
        repo.update_progress(
            course_id, 1, "in_progress", f"m{i}", metadata={"run_id": run_id, f"k{i}": i}
        )
        for i in range(20)
    ]
    await asyncio.gather(*writes)
    stored = await row(pg_pool, course_id)
    assert stored["progress_seq"] == 21
    assert set(stored["generation_progress"]["steps"][0]["metadata"]) == {
        "run_id",
        *(f"k{i}" for i in range(20)),
    }


FIRST_STEPS = [(1, "in_progress"), (1, "completed"), (2, "in_progress")]


async def test_claim_with_its_first_steps_is_the_calls_one_by_one(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """`claim_course_generation` leaves the row, its status history and its sequence exactly
    as `begin_course_generation` and then each write on its own do, in one call."""
    separate, run_id = await claimed_course(repo, pg_pool, steps=FIRST_STEPS)
    together = await insert_course(pg_pool)
    document = await repo.begin_generation(
        together,
        "wf",
        run_id,
        "STRUCTURE_ANALYSIS",
        run_start(),
        None,
        step_rows(run_id, FIRST_STEPS),
    )
    one, other = await row(pg_pool, separate), await row(pg_pool, together)
    assert document is not None
    assert without_times(document) == without_times(one["generation_progress"])
    assert without_times(other["generation_progress"]) == without_times(document)
    assert (other["status"], other["progress_seq"]) == (one["status"], one["progress_seq"])
    assert await history(pg_pool, together) == await history(pg_pool, separate)
    assert other["status"] == "analyzing_task"


async def test_a_repeated_claim_with_its_steps_changes_nothing(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """The claim retried by the same run (its local activity's next attempt) moves nothing
    back: the same status and steps."""
    course_id, run_id = await insert_course(pg_pool), new_id()
    started = run_start()
    args = (
        course_id,
        "wf",
        run_id,
        "STRUCTURE_ANALYSIS",
        started,
        None,
        step_rows(run_id, FIRST_STEPS),
    )
    first = await repo.begin_generation(*args)
    again = await repo.begin_generation(*args)
    assert first is not None
    assert again is not None
    assert without_times(again) == without_times(first)
    assert (await row(pg_pool, course_id))["status"] == "analyzing_task"


async def test_a_stale_claim_with_its_steps_writes_nothing(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A claim by a run older than the course's is refused as `StaleRun` before any of its
    writes; an unknown course is None."""
    course_id, new_run = await insert_course(pg_pool), new_id()
    await repo.begin_generation(course_id, "wf", new_run, "STRUCTURE_ANALYSIS", run_start())
    before = await row(pg_pool, course_id)
    old_run, old_start = new_id(), before["run_started_at"] - timedelta(seconds=5)
    with pytest.raises(StaleRun):
        await repo.begin_generation(
            course_id,
            "wf",
            old_run,
            "STRUCTURE_ANALYSIS",
            old_start,
            None,
            step_rows(old_run, FIRST_STEPS),
        )
    after = await row(pg_pool, course_id)
    assert (after["run_id"], after["progress_seq"]) == (new_run, before["progress_seq"])
    missing = await repo.begin_generation(
        new_id(),
        "wf",
        old_run,
        "STRUCTURE_ANALYSIS",
        run_start(),
        None,
        step_rows(old_run, FIRST_STEPS),
    )
    assert missing is None
