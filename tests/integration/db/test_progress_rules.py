"""update_course_progress: order of checks, fence, idempotency, document creation, fields."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from db.repository import CourseRepository, InvalidArgument, InvalidTransition, StaleRun
from tests.factories import insert_course, new_id
from tests.integration.db.support import (
    FULL_RUN,
    TS,
    claimed_course,
    expected_document,
    history,
    masked,
    row,
)


@pytest.mark.parametrize(
    ("step", "status", "error"),
    [
        (0, "in_progress", "invalid step_id: 0"),
        (6, "completed", "invalid step_id: 6"),
        (1, "bogus", "invalid status: bogus"),
    ],
)
async def test_bad_step_or_status_is_refused_before_anything_else(
    repo: CourseRepository, pg_pool: asyncpg.Pool, step: int, status: str, error: str
) -> None:
    """Step 0/6 and status 'bogus' raise even for unknown courses and fenced writes."""
    course_id, run_id = await claimed_course(repo, pg_pool)
    before = await row(pg_pool, course_id)
    for target, metadata in [
        (new_id(), {}),
        (course_id, {"run_id": "stale"}),
        (course_id, {"run_id": run_id}),
    ]:
        with pytest.raises(InvalidArgument, match=error):
            await repo.update_progress(target, step, status, "m", metadata=metadata)
    assert await row(pg_pool, course_id) == before


async def test_unknown_course_is_null(repo: CourseRepository) -> None:
    """A progress write for a course that does not exist returns None."""
    assert await repo.update_progress(new_id(), 1, "in_progress", "m") is None


@pytest.mark.parametrize("metadata", [{"run_id": "an-old-run"}, {}, {"run_id": None}])
async def test_stale_or_missing_run_id_is_refused(
    repo: CourseRepository, pg_pool: asyncpg.Pool, metadata: dict[str, object]
) -> None:
    """A write with another run's id, or without one, raises StaleRun and writes nothing."""
    course_id, _ = await claimed_course(repo, pg_pool)
    before = await row(pg_pool, course_id)
    with pytest.raises(StaleRun, match="stale run"):
        await repo.update_progress(course_id, 1, "in_progress", "late", metadata=metadata)
    assert await row(pg_pool, course_id) == before


async def test_a_late_in_progress_never_moves_a_completed_step_back(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """Within one run, `in_progress` (or `pending`) after the step completed is a no-op."""
    course_id, run_id = await claimed_course(repo, pg_pool)
    meta = {"run_id": run_id}
    await repo.update_progress(course_id, 1, "completed", "done", metadata=meta)
    await repo.update_progress(course_id, 2, "in_progress", "two", metadata=meta)
    await repo.update_progress(course_id, 2, "completed", "two done", metadata=meta)
    before = await row(pg_pool, course_id)
    assert before["generation_progress"]["percentage"] == 40
    for status in ("in_progress", "pending"):
        await repo.update_progress(course_id, 2, status, "late", metadata=meta)
    assert await row(pg_pool, course_id) == before


async def test_a_repeated_completion_after_the_next_step_began_keeps_the_status(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A worker that died inside a workflow task has its progress writes run again by the
    next one: `step 2 completed` arriving while step 3 runs keeps `generating_structure`."""
    course_id, run_id = await claimed_course(repo, pg_pool)
    meta = {"run_id": run_id}
    await repo.update_progress(course_id, 1, "completed", "done", metadata=meta)
    await repo.update_progress(course_id, 2, "in_progress", "two", metadata=meta)
    await repo.update_progress(course_id, 2, "completed", "two done", metadata=meta)
    await repo.update_progress(course_id, 3, "in_progress", "three", metadata=meta)
    await repo.update_progress(course_id, 2, "completed", "two done", metadata=meta)
    after = await row(pg_pool, course_id)
    assert after["status"] == "generating_structure"
    assert after["generation_progress"]["steps"][2]["status"] == "in_progress"


async def test_write_without_run_id_applies_to_a_never_claimed_course(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """With no run recorded, a write without run id applies and creates the document."""
    course_id = await insert_course(pg_pool)
    document = await repo.update_progress(course_id, 1, "in_progress", "Запуск")
    assert document is not None
    expected = expected_document(False, percentage=10, message="Запуск")
    expected["steps"][0] |= {"status": "in_progress", "started_at": TS}
    assert masked(document) == expected
    stored = await row(pg_pool, course_id)
    assert stored["status"] == "initializing"
    assert stored["generation_started_at"] is not None


async def test_document_is_created_keeping_present_keys(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A document without steps gets all five, keeps its keys, and branches on `files`."""
    present = {"files": [{"id": "f1"}], "simulation": {"fail_at_step": 3}, "percentage": 0}
    course_id = await insert_course(pg_pool, progress=present)
    document = await repo.update_progress(course_id, 2, "in_progress", "docs")
    assert document is not None
    assert document["files"] == present["files"]
    assert document["simulation"] == present["simulation"]
    assert document["has_documents"] is True
    assert document["steps"][1]["name"] == "Обработка документов"
    assert (await row(pg_pool, course_id))["status"] == "processing_documents"


async def test_repeat_writes_nothing(repo: CourseRepository, pg_pool: asyncpg.Pool) -> None:
    """The same call twice: same document, same seq and updated_at, no history row."""
    course_id, run_id = await claimed_course(repo, pg_pool)
    for status in ("in_progress", "completed", "failed"):
        first = await repo.update_progress(
            course_id, 1, status, "m", "err", {"e": 1}, {"run_id": run_id, "k": "v"}
        )
        before, rows = await row(pg_pool, course_id), await history(pg_pool, course_id)
        again = await repo.update_progress(
            course_id, 1, status, "m", "err", {"e": 1}, {"run_id": run_id, "k": "v"}
        )
        assert again == first
        assert await row(pg_pool, course_id) == before
        assert await history(pg_pool, course_id) == rows
        if status == "completed":
            await repo.update_progress(
                course_id, 2, "in_progress", "m", metadata={"run_id": run_id}
            )


async def test_metadata_merges_inside_the_step(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """Metadata accumulates in steps[i].metadata and never overwrites step fields."""
    course_id, run_id = await claimed_course(repo, pg_pool)
    await repo.update_progress(
        course_id, 1, "in_progress", "m", metadata={"run_id": run_id, "a": 1}
    )
    document = await repo.update_progress(
        course_id, 1, "in_progress", "m", metadata={"run_id": run_id, "b": 2, "status": "hack"}
    )
    assert document is not None
    step = document["steps"][0]
    assert step["status"] == "in_progress"
    assert step["metadata"] == {"run_id": run_id, "a": 1, "b": 2, "status": "hack"}
    assert "a" not in document
    assert "b" not in document


async def test_failed_step_sets_errors_and_completion(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A failed step stores its error, keeps the percentage and fails the course."""
    course_id, run_id = await claimed_course(repo, pg_pool, steps=[(1, "in_progress")])
    document = await repo.update_progress(
        course_id, 1, "failed", "Не удалось", "Формат", {"code": "X"}, {"run_id": run_id}
    )
    assert document is not None
    assert document["percentage"] == 10
    step = masked(document)["steps"][0]
    assert (step["status"], step["error"], step["error_details"]) == (
        "failed",
        "Формат",
        {"code": "X"},
    )
    assert step["completed_at"] == TS
    stored = await row(pg_pool, course_id)
    assert (stored["status"], stored["error_message"], stored["error_details"]) == (
        "failed",
        "Формат",
        {"code": "X"},
    )
    assert stored["generation_completed_at"] is not None


async def test_pending_leaves_percentage_and_status(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A pending step write changes neither the percentage nor generation_status."""
    course_id, run_id = await claimed_course(repo, pg_pool, steps=[(1, "in_progress")])
    meta = {"run_id": run_id}
    document = await repo.update_progress(course_id, 2, "pending", "waiting", metadata=meta)
    assert document is not None
    assert (document["percentage"], document["current_step"]) == (10, 2)
    assert document["steps"][1]["started_at"] is None
    assert (await row(pg_pool, course_id))["status"] == "initializing"


async def test_forbidden_derived_move_raises_invalid_transition(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """Writing step 5 in_progress while step 3 runs skips two states: refused, nothing changes."""
    course_id, run_id = await claimed_course(repo, pg_pool, steps=FULL_RUN[:5])
    before = await row(pg_pool, course_id)
    assert before["status"] == "generating_structure"
    with pytest.raises(InvalidTransition, match="invalid generation_status transition"):
        await repo.update_progress(course_id, 5, "in_progress", "m", metadata={"run_id": run_id})
    assert await row(pg_pool, course_id) == before


async def test_metadata_must_be_an_object(repo: CourseRepository, pg_pool: asyncpg.Pool) -> None:
    """Metadata that is not a JSON object is refused."""
    course_id = await insert_course(pg_pool)
    not_an_object: Any = [1]  # what an untyped caller could pass
    with pytest.raises(InvalidArgument, match="metadata"):
        await repo.update_progress(course_id, 1, "in_progress", "m", metadata=not_an_object)
