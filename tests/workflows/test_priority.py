"""Admitted runs waiting for a stage's capacity enter that stage in tier priority order."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from tests.helpers import eventually
from tests.workflows.support import SCHEDULED, Stacks, assert_stage


async def stage_started_at(handle: WorkflowHandle[Any, Any], stage: str) -> datetime:
    scheduled = None
    async for event in handle.fetch_history_events():
        scheduled_attrs = event.activity_task_scheduled_event_attributes
        started_attrs = event.activity_task_started_event_attributes
        if event.HasField("activity_task_scheduled_event_attributes") and (
            scheduled_attrs.activity_type.name == stage
        ):
            scheduled = event.event_id
        if event.HasField("activity_task_started_event_attributes") and (
            started_attrs.scheduled_event_id == scheduled
        ):
            return event.event_time.ToDatetime()
    raise AssertionError(f"{stage} never started in {handle.id}")


@pytest.mark.parametrize(
    ("stage", "step", "capacity"),
    [
        ("structure_analysis", 2, {"STAGE_CAPACITY": "1"}),
        ("text_generation", 4, {"STAGE_CAPACITY_TEXT_GENERATION": "1"}),
    ],
    ids=["STAGE_CAPACITY", "STAGE_CAPACITY_TEXT_GENERATION"],
)
async def test_backlog_enters_the_stage_by_priority(
    stacks: Stacks, stage: str, step: int, capacity: dict[str, str]
) -> None:
    """With the stage's one slot held, a FREE/BASIC/STANDARD/PREMIUM backlog on that stage's
    queue enters PREMIUM first (the other stages keep their 10 slots)."""
    async with stacks.open(stacks.env(**capacity)) as stack:
        hold = {"hold_at_step": step, "hold_seconds": 60}
        holder = await stack.create_course(simulation=hold)
        _, holder_handle = await stack.start(holder)
        await eventually(lambda: assert_stage(holder_handle, stage))

        handles: dict[str, WorkflowHandle[Any, Any]] = {}
        for tier in ("FREE", "BASIC", "STANDARD", "PREMIUM"):
            course = await stack.create_course(tier=tier, simulation={"stage_seconds": 0.1})
            result, handles[tier] = await stack.start(course)
            assert result.decision == "admitted"
            await eventually(partial(assert_stage, handles[tier], stage, SCHEDULED))

        await holder_handle.cancel()  # frees the one slot once the stage sees the cancel
        for handle in handles.values():
            assert (await handle.result()).outcome == "completed"
        started = {tier: await stage_started_at(h, stage) for tier, h in handles.items()}
        assert sorted(started, key=started.__getitem__) == ["PREMIUM", "STANDARD", "BASIC", "FREE"]
