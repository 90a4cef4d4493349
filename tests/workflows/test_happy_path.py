"""Both branches run to `completed` through update-with-start, the stages and the lease."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.helpers import eventually
from tests.workflows.support import Stack
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
