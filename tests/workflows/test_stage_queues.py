"""One task queue per stage: each stage's pollers are handed only that stage's tasks, so a
fleet serving one stage in a process of its own never receives another stage's work."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

import temporal_connect
from tests.factories import make_settings
from tests.helpers import eventually
from tests.workflows.support import Stack, Stacks, worker_process
from worker import stage_workers
from workflows.steps import STAGE_NAMES

NOT_REGISTERED = "not registered"
OTHER_STAGES = ",".join(stage for stage in STAGE_NAMES if stage != "text_generation")


def registered(worker: Worker) -> tuple[str, list[str]]:
    """A worker's queue and the activity names it registered."""
    handlers: list[Any] = list(worker.config()["activities"])
    names = [getattr(handler, "__temporal_activity_definition").name for handler in handlers]
    return worker.task_queue, sorted(names)


async def attempts_and_queues(handle: WorkflowHandle[Any, Any]) -> tuple[list[int], dict[str, str]]:
    """Every activity attempt the run started, and the queue each activity type was scheduled on."""
    attempts, queues = [], {}
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            queues[attrs.activity_type.name] = attrs.task_queue.name
        if event.HasField("activity_task_started_event_attributes"):
            attempts.append(event.activity_task_started_event_attributes.attempt)
    return attempts, queues


async def test_each_simulated_stage_has_a_worker_of_its_own(stacks: Stacks) -> None:
    """A worker per simulated stage on `<TEMPORAL_STAGE_TASK_QUEUE>.<stage>`, registering that
    stage and its cleanup (only when listed); cleanups of stages served elsewhere are not ours."""
    settings = make_settings(
        stacks.env(
            SIMULATED_STAGES="structure_analysis,text_generation",
            STAGE_CLEANUP_ACTIVITIES="text_generation,finalization",
        )
    )
    prefix = settings.temporal.stage_task_queue
    assert [registered(w) for w in stage_workers(stacks.client, settings)] == [
        (f"{prefix}.structure_analysis", ["structure_analysis"]),
        (f"{prefix}.text_generation", ["text_generation", "text_generation_cleanup"]),
    ]


def test_no_simulated_stage_no_stage_worker(stacks: Stacks) -> None:
    """SIMULATED_STAGES=none registers no stage handler and no cleanup, whatever is listed."""
    settings = make_settings(stacks.env(SIMULATED_STAGES="none", STAGE_CLEANUP_ACTIVITIES="all"))
    assert stage_workers(stacks.client, settings) == []


async def test_a_stage_served_by_another_process_gets_only_its_own_tasks(
    stacks: Stacks, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`python -m worker stages` serving only text_generation in its own process, our worker
    the other stages: 20 runs complete, every activity on its first attempt, each stage on its
    own queue, and neither worker logs an activity that is not registered."""
    log = tmp_path / "text-generation-worker.log"
    fleet_env = stacks.env(SIMULATED_STAGES="text_generation", LOG_LEVEL="info")
    text_queue = f"{fleet_env['TEMPORAL_STAGE_TASK_QUEUE']}.text_generation"
    kind = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    with caplog.at_level(logging.WARNING), worker_process(fleet_env, "stages", output=log) as fleet:

        async def polled() -> None:
            assert await temporal_connect.live_pollers(stacks.client, text_queue, kind)

        await eventually(polled, 30)
        async with stacks.open(SIMULATED_STAGES=OTHER_STAGES) as stack:
            courses = [
                await stack.create_course(files=[{"name": "brief.pdf"}] if i % 2 else None)
                for i in range(20)
            ]
            handles = [(await stack.start(course))[1] for course in courses]
            outcomes = await asyncio.gather(*(handle.result() for handle in handles))
        assert fleet.poll() is None, log.read_text()
    assert [outcome.outcome for outcome in outcomes] == ["completed"] * 20
    prefix = stack.settings.temporal.stage_task_queue
    for handle in handles:
        attempts, queues = await attempts_and_queues(handle)
        assert set(attempts) == {1}, handle.id
        assert queues["text_generation"] == text_queue
        assert queues["finalization"] == f"{prefix}.finalization"
    assert NOT_REGISTERED not in caplog.text
    fleet_log = log.read_text()
    assert "worker polling" in fleet_log, fleet_log
    assert NOT_REGISTERED not in fleet_log


async def test_a_simulated_stage_heartbeats_a_growing_counter(stack: Stack) -> None:
    """The heartbeat details of a running simulated stage are a counter that grows."""
    course = await stack.create_course(simulation={"hold_at_step": 3, "hold_seconds": 30})
    _, handle = await stack.start(course)

    async def counter() -> int:
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if pending.activity_type.name == "structure_generation":
                details = pending.heartbeat_details.payloads
                assert details, "no heartbeat yet"
                (count,) = await stack.client.data_converter.decode(details)
                assert isinstance(count, int)
                return count
        raise AssertionError("structure_generation is not running")

    first = await eventually(counter)

    async def grown() -> None:
        assert await counter() > first

    await eventually(grown)
    await handle.cancel()
