"""Both branches run to `completed` through update-with-start, the stages and the lease."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.helpers import eventually
from tests.workflows.support import Stack, scheduled_activities
from workflows import search_attributes as sa

CHAIN = ["pending", "initializing", "{step2}", "generating_structure", "generating_content"]


@pytest.mark.parametrize(
    ("files", "generation_type", "step2", "step2_status"),
    [
        (None, "STRUCTURE_ANALYSIS", "Анализ задачи", "analyzing_task"),
        (
            [{"name": "brief.pdf"}],
            "DOCUMENT_PROCESSING",
            "Обработка документов",
            "processing_documents",
        ),
    ],
)
async def test_branch_runs_to_completed(
    stack: Stack, files: object, generation_type: str, step2: str, step2_status: str
) -> None:
    """A run of either branch completes: document, timestamps, status history, lease released."""
    course = await stack.create_course(files=files)
    result, handle = await stack.start(course)
    assert result.decision == "admitted"
    assert result.new_run is True
    assert result.generation_type == generation_type
    assert result.workflow_id == f"course-generation-{course.course_id}"

    outcome = await handle.result()
    assert outcome.outcome == "completed"

    row = await stack.repository.get_course(course.course_id)
    assert row is not None
    assert row.generation_status == "completed"
    assert row.run_id == result.run_id
    assert row.generation_started_at is not None
    assert row.generation_completed_at is not None
    doc = row.generation_progress
    assert doc is not None
    assert [s["status"] for s in doc["steps"]] == ["completed"] * 5
    assert doc["steps"][1]["name"] == step2
    assert doc["percentage"] == 100
    assert doc["steps"][1]["metadata"]["run_id"] == result.run_id
    expected = [s.format(step2=step2_status) for s in CHAIN] + ["finalizing", "completed"]
    assert await stack.statuses(course.course_id) == expected
    assert await stack.leases.usage(course.user_id) == []
    activities = await scheduled_activities(handle)
    assert activities[-2:] == ["finalization", "update_progress"]  # it freed the lease too
    assert "release_lease" not in activities

    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    attributes = description.typed_search_attributes
    assert attributes.get(sa.GENERATION_STATUS) == "completed"
    assert attributes.get(sa.GENERATION_TYPE) == generation_type
    assert attributes.get(sa.COURSE_ID) == course.course_id
    assert attributes.get(sa.USER_TIER) == "PREMIUM"


async def test_progress_query_and_current_details(stack: Stack) -> None:
    """While a stage runs, the query names the step and the current details name it too."""
    course = await stack.create_course(simulation={"hold_at_step": 3, "hold_seconds": 30})
    _, handle = await stack.start(course)

    async def in_step_3() -> None:
        progress = await handle.query("progress")
        assert progress["step"] == 3
        assert progress["generation_status"] == "generating_structure"
        assert progress["admission"]["decision"] == "admitted"

    await eventually(in_step_3)
    metadata = await handle.query("__temporal_workflow_metadata")
    assert "Генерация структуры" in metadata.current_details
    summary = await (await handle.describe()).static_summary()
    assert summary is not None
    assert course.course_id in summary
    await handle.cancel()


async def row_of(stack: Stack, course_id: str) -> tuple[str | None, dict[str, Any]]:
    """The course's generation status and progress document."""
    row = await stack.repository.get_course(course_id)
    assert row is not None
    assert row.generation_progress is not None
    return row.generation_status, row.generation_progress


async def test_the_claim_writes_steps_one_and_two_so_the_run_starts_with_the_stage(
    stack: Stack,
) -> None:
    """The claim also writes step 1 completed and step 2 in progress: when the start is
    answered the row is already in step 2, and the run's first local activities are the
    reserve and the claim, then the stage (no progress write between them)."""
    course = await stack.create_course(simulation={"hold_at_step": 2, "hold_seconds": 30})
    result, handle = await stack.start(course)
    status, doc = await row_of(stack, course.course_id)
    assert (status, doc["current_step"]) == ("analyzing_task", 2)
    assert [s["status"] for s in doc["steps"][:2]] == ["completed", "in_progress"]
    assert result.generation_type == "STRUCTURE_ANALYSIS"
    progress = await handle.query("progress")
    assert (progress["step"], progress["generation_status"]) == (2, "analyzing_task")
    activities = await scheduled_activities(handle)
    assert activities[:3] == ["reserve_lease", "claim_course", "structure_analysis"]
    await handle.cancel()


async def test_a_hold_after_step_one_is_written_by_the_run(stack: Stack) -> None:
    """A simulation hold between step 1 and step 2 keeps the claim to step 1: the run writes
    step 1 completed, holds, then step 2, and completes."""
    course = await stack.create_course(simulation={"hold_after_step": 1, "hold_seconds": 1})
    result, handle = await stack.start(course)
    assert (await row_of(stack, course.course_id))[1]["current_step"] == 1

    async def step_one_completed_alone() -> None:
        steps = (await row_of(stack, course.course_id))[1]["steps"]
        assert [s["status"] for s in steps[:2]] == ["completed", "pending"]

    await eventually(step_one_completed_alone)
    assert (await handle.result()).outcome == "completed"
    activities = await scheduled_activities(handle)
    assert activities[:3] == ["reserve_lease", "claim_course", "update_progress"]
    assert result.decision == "admitted"
