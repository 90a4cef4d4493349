"""Recorded histories replay against the current workflow code, so nondeterminism fails CI.

Re-record after an intentional, versioned change with
`RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/workflows/test_replay.py`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer

from tests.helpers import eventually
from tests.workflows.support import Stack, assert_stage
from workflows.course_generation import CourseGenerationWorkflow

HISTORIES = Path(__file__).parent / "histories"
SCENARIOS = ("structure_analysis", "document_processing", "cancelled", "rejected")


async def run_scenarios(stack: Stack) -> dict[str, WorkflowHandle[Any, Any]]:
    handles = {}
    analysis = await stack.create_course()
    _, handles["structure_analysis"] = await stack.start(analysis)
    documents = await stack.create_course(files=[{"name": "brief.pdf"}])
    _, handles["document_processing"] = await stack.start(documents)

    held = await stack.create_course(
        tier="FREE", simulation={"hold_at_step": 3, "hold_seconds": 60}
    )
    _, handles["cancelled"] = await stack.start(held)
    await eventually(lambda: assert_stage(handles["cancelled"], "structure_generation"))
    second = await stack.create_course(tier="FREE", user_id=held.user_id)
    result, handles["rejected"] = await stack.start(second)
    assert result.decision == "rejected"
    await handles["cancelled"].cancel()

    for name, handle in handles.items():
        if name == "cancelled":
            with pytest.raises(WorkflowFailureError):
                await handle.result()
        else:
            await handle.result()
    return handles


async def test_fresh_histories_replay(stack: Stack) -> None:
    """Both branches, a cancellation and a rejection replay cleanly (recorded on request)."""
    handles = await run_scenarios(stack)
    replayer = Replayer(workflows=[CourseGenerationWorkflow])
    for name, handle in handles.items():
        history = await handle.fetch_history()
        await replayer.replay_workflow(history)
        if os.environ.get("RECORD_HISTORIES") == "1":
            (HISTORIES / f"{name}.json").write_text(history.to_json())


async def test_recorded_histories_replay() -> None:
    """Every committed history replays without a nondeterminism error."""
    files = sorted(HISTORIES.glob("*.json"))
    assert {f.stem for f in files} >= set(SCENARIOS)
    replayer = Replayer(workflows=[CourseGenerationWorkflow])
    for path in files:
        await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))
