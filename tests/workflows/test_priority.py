"""Admitted runs waiting for stage capacity enter the stage in tier priority order."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle

from tests.helpers import eventually
from tests.workflows.conftest import make_settings, open_stack, pending_stage_started

STAGE = "structure_analysis"


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


async def stage_scheduled(handle: WorkflowHandle[Any, Any]) -> None:
    description = await handle.describe()
    states = {p.activity_type.name: p.state for p in description.raw_description.pending_activities}
    assert states.get(STAGE) == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED, states


async def test_backlog_enters_the_stage_by_priority(
    temporal_client: Client, pg_pool: asyncpg.Pool, redis_url: str, key_prefix: str, task_queue: str
) -> None:
    """With the one slot held, a FREE/BASIC/STANDARD/PREMIUM backlog enters PREMIUM first."""
    prefix = f"{key_prefix}:{uuid.uuid4().hex[:8]}"
    settings = make_settings(task_queue, prefix, capacity=1)
    async with open_stack(temporal_client, pg_pool, redis_url, settings) as stack:
        holder = await stack.create_course(simulation={"hold_at_step": 2, "hold_seconds": 60})
        _, holder_handle = await stack.start(holder)
        await eventually(lambda: pending_stage_started(holder_handle, STAGE))

        handles = {}
        for tier in ("FREE", "BASIC", "STANDARD", "PREMIUM"):
            course = await stack.create_course(tier=tier, simulation={"stage_seconds": 0.1})
            result, handles[tier] = await stack.start(course)
            assert result.decision == "admitted"
            await eventually(lambda h=handles[tier]: stage_scheduled(h))

        await holder_handle.cancel()  # frees the one slot once the stage sees the cancel
        for handle in handles.values():
            assert (await handle.result()).outcome == "completed"
        started = {tier: await stage_started_at(h, STAGE) for tier, h in handles.items()}
        assert sorted(started, key=started.__getitem__) == ["PREMIUM", "STANDARD", "BASIC", "FREE"]
