"""The full happy path of both branches against the expected document and status history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import pytest

from db.repository import CourseRepository
from tests.factories import insert_course, new_id, run_start
from tests.integration.db.support import (
    TS,
    claimed_course,
    expected_document,
    expected_step,
    history,
    masked,
    row,
)

BRANCHES = {
    "DOCUMENT_PROCESSING": (True, "processing_documents"),
    "STRUCTURE_ANALYSIS": (False, "analyzing_task"),
}


def walk(step_two: str) -> list[tuple[int, str, int, str]]:
    """(step, status, expected percentage, expected generation_status) of a full run."""
    statuses = ["initializing", step_two, "generating_structure", "generating_content"]
    moves = []
    for step in range(1, 6):
        during = statuses[step - 1] if step < 5 else "finalizing"
        moves.append((step, "in_progress", (step - 1) * 20 + 10, during))
        moves.append((step, "completed", step * 20, "completed" if step == 5 else during))
    return moves


@pytest.mark.parametrize("generation_type", list(BRANCHES))
async def test_full_run_matches_the_expected_document(
    repo: CourseRepository, pg_pool: asyncpg.Pool, generation_type: str
) -> None:
    """Claim plus ten progress writes give the exact document, statuses and history."""
    has_documents, step_two = BRANCHES[generation_type]
    course_id, run_id = await insert_course(pg_pool), new_id()
    claimed = await repo.begin_generation(course_id, "wf-1", run_id, generation_type, run_start())
    assert claimed == expected_document(has_documents)
    assert (await row(pg_pool, course_id))["status"] == "pending"
    expected = expected_document(has_documents)
    for step, status, percentage, generation_status in walk(step_two):
        message = f"{step}:{status}"
        document = await repo.update_progress(
            course_id, step, status, message, metadata={"run_id": run_id, f"m{step}": status}
        )
        assert document is not None
        previous = expected["steps"][step - 1]
        expected["steps"][step - 1] = previous | {
            "status": status,
            "started_at": TS,
            "completed_at": TS if status == "completed" else None,
            "metadata": previous["metadata"] | {"run_id": run_id, f"m{step}": status},
        }
        expected |= {"current_step": step, "percentage": percentage, "message": message}
        assert masked(document) == expected
        stored = await row(pg_pool, course_id)
        assert stored["status"] == generation_status
        assert stored["generation_progress"] == document
    assert await history(pg_pool, course_id) == [
        (None, "pending"),
        ("pending", "initializing"),
        ("initializing", step_two),
        (step_two, "generating_structure"),
        ("generating_structure", "generating_content"),
        ("generating_content", "finalizing"),
        ("finalizing", "completed"),
    ]
    final = await row(pg_pool, course_id)
    assert_timestamps_ordered(final["generation_progress"])
    assert final["progress_seq"] == 11
    assert final["generation_started_at"] <= final["generation_completed_at"]
    assert final["workflow_id"] == "wf-1"
    assert final["run_id"] == run_id


def assert_timestamps_ordered(document: dict[str, Any]) -> None:
    """Each step started no later than it completed, and no step started before the last."""
    previous_end = None
    for step in document["steps"]:
        started = datetime.fromisoformat(step["started_at"])
        completed = datetime.fromisoformat(step["completed_at"])
        assert started <= completed
        assert previous_end is None or previous_end <= started
        previous_end = completed


async def test_in_progress_keeps_the_first_started_at(
    repo: CourseRepository, pg_pool: asyncpg.Pool
) -> None:
    """A second in_progress write of a step keeps its started_at and updates the message."""
    course_id, run_id = await claimed_course(repo, pg_pool)
    first = await repo.update_progress(
        course_id, 1, "in_progress", "a", metadata={"run_id": run_id}
    )
    second = await repo.update_progress(
        course_id, 1, "in_progress", "b", metadata={"run_id": run_id}
    )
    assert first is not None
    assert second is not None
    assert second["steps"][0]["started_at"] == first["steps"][0]["started_at"]
    assert second["message"] == "b"
    done = await repo.update_progress(course_id, 1, "completed", "c", metadata={"run_id": run_id})
    assert done is not None
    assert done["steps"][0]["started_at"] == first["steps"][0]["started_at"]
    assert (
        expected_step(
            1,
            False,
            status="completed",
            started_at=TS,
            completed_at=TS,
            metadata={"run_id": run_id},
        )
        == masked(done)["steps"][0]
    )
