"""The stage workers: one per simulated stage, each on its stage's own queue with that stage's
capacity (a fixed slot count, or the resource-based tuner up to it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import ResourceBasedSlotConfig, Worker, WorkerTuner

from activities.stages import SimulatedStages
from settings import Settings
from worker.options import SHUTDOWN_GRACE


def stage_workers(client: Client, settings: Settings) -> list[Worker]:
    """One worker per stage in `SIMULATED_STAGES`, on that stage's own queue, registering the
    stage and, when `STAGE_CLEANUP_ACTIVITIES` lists it, its cleanup: nothing of another stage,
    since Temporal hands a poller any task of its queue."""
    stages = settings.stages
    simulated = SimulatedStages(stages.simulated_stage_seconds)
    return [
        stage_worker(
            client,
            settings.temporal.stage_queue(stage),
            simulated.for_stage(stage, cleanup=stage in stages.cleanup_activities),
            stages.capacity_for(stage),
            stages.resource_tuner,
        )
        for stage in stages.simulated_stages
    ]


def stage_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Any],
    capacity: int,
    resource_tuner: bool = False,
) -> Worker:
    """A stage queue's worker with `capacity` slots (or sized by CPU and memory up to that):
    tasks beyond it wait in the queue's backlog, taken in priority order."""
    tuner = (
        WorkerTuner.create_resource_based(
            target_memory_usage=0.8,
            target_cpu_usage=0.9,
            activity_config=ResourceBasedSlotConfig(minimum_slots=1, maximum_slots=capacity),
        )
        if resource_tuner
        else WorkerTuner.create_fixed(
            workflow_slots=10, activity_slots=capacity, local_activity_slots=10
        )
    )
    return Worker(
        client,
        task_queue=task_queue,
        activities=list(activities),
        tuner=tuner,
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
    )
