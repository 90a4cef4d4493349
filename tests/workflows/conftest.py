"""Fixtures for workflow tests: workers built by `worker.build_workers` on fresh task queues."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.leases import Leases, create_redis
from db.repository import CourseRepository
from settings import Settings, load_settings
from tiers import parse_tier
from workflows.course_generation import CourseGenerationWorkflow
from workflows.start import start_operation
from workflows.types import AdmissionRequest, AdmissionResult, CourseGenerationInput


@dataclasses.dataclass
class Course:
    course_id: str
    user_id: str
    tier: str


def make_settings(task_queue: str, prefix: str, **stages: Any) -> Settings:
    """This test's settings: its own queues and Redis prefix, fast stages, 1 s heartbeats."""
    base = load_settings(env_file=None)
    stage_values = {"heartbeat_timeout_seconds": 1, "simulated_stage_seconds": 0, **stages}
    return dataclasses.replace(
        base,
        temporal=base.temporal.model_copy(
            update={"task_queue": task_queue, "stage_task_queue": f"{task_queue}-stages"}
        ),
        stores=base.stores.model_copy(update={"redis_key_prefix": prefix}),
        stages=base.stages.model_copy(update=stage_values),
    )


@dataclasses.dataclass
class Stack:
    client: Client
    settings: Settings
    pool: asyncpg.Pool
    repository: CourseRepository
    leases: Leases

    async def create_course(
        self,
        tier: str = "PREMIUM",
        files: Any = None,
        simulation: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> Course:
        """A fresh owner (unless given) and course row with the given progress knobs."""
        course = Course(str(uuid.uuid4()), user_id or str(uuid.uuid4()), tier)
        progress: dict[str, Any] = {"simulation": simulation or {}}
        if files is not None:
            progress["files"] = files
        async with self.pool.acquire() as conn:
            if user_id is None:
                await conn.execute("INSERT INTO auth.users (id) VALUES ($1)", course.user_id)
                await conn.execute(
                    "INSERT INTO public.user_profiles (id, tier) VALUES ($1, $2)",
                    course.user_id,
                    tier,
                )
            await conn.execute(
                "INSERT INTO public.courses (id, user_id, title, generation_progress)"
                " VALUES ($1, $2, $3, $4)",
                course.course_id,
                course.user_id,
                "Test course",
                progress,
            )
        return course

    async def start(
        self, course: Course, token: str | None = None
    ) -> tuple[AdmissionResult, WorkflowHandle[Any, Any]]:
        """Update-with-start exactly as the gateway does it; returns the answer and the run."""
        inp = CourseGenerationInput(
            course.course_id,
            course.user_id,
            course.tier,
            uuid.uuid4().hex,
            token or uuid.uuid4().hex,
        )
        policy = self.settings.admission.policy(parse_tier(course.tier)[0])
        operation = start_operation(
            inp,
            task_queue=self.settings.temporal.task_queue,
            execution_timeout_seconds=self.settings.workflow.execution_timeout_seconds,
            priority_key=policy.priority_key,
        )
        result = await self.client.execute_update_with_start_workflow(
            CourseGenerationWorkflow.admission,
            AdmissionRequest(inp.start_token),
            start_workflow_operation=operation,
        )
        handle = await operation.workflow_handle()
        return result, self.client.get_workflow_handle_for(
            CourseGenerationWorkflow.run, handle.id, run_id=result.run_id
        )

    async def metrics(self, course_id: str, event_type: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM system_metrics WHERE course_id = $1 AND event_type = $2",
            uuid.UUID(course_id),
            event_type,
        )
        return [dict(row) for row in rows]

    async def statuses(self, course_id: str) -> list[str]:
        history = await self.repository.status_history(course_id)
        return [str(row["new_status"]) for row in history]


@contextlib.asynccontextmanager
async def running(workers: list[Worker]) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield


@contextlib.asynccontextmanager
async def open_stack(
    client: Client,
    pool: asyncpg.Pool,
    redis_url: str,
    settings: Settings,
    with_workers: bool = True,
) -> AsyncIterator[Stack]:
    from worker import build_workers

    redis = create_redis(redis_url)
    stack = Stack(
        client,
        settings,
        pool,
        CourseRepository(pool),
        Leases(redis, settings.stores.redis_key_prefix),
    )
    try:
        if with_workers:
            async with running(build_workers(client, settings, pool, redis)):
                yield stack
        else:
            yield stack
    finally:
        await redis.aclose()


@pytest_asyncio.fixture
async def stack(
    temporal_client: Client, pg_pool: asyncpg.Pool, redis_url: str, key_prefix: str, task_queue: str
) -> AsyncIterator[Stack]:
    """Both workers of `worker.build_workers` on this test's queues, plus store handles."""
    settings = make_settings(task_queue, f"{key_prefix}:{uuid.uuid4().hex[:8]}")
    async with open_stack(temporal_client, pg_pool, redis_url, settings) as built:
        yield built


async def scheduled_activities(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Activity type names in the order the run scheduled them."""
    names = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
    return names


async def cancelled_activities(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Activity types that acknowledged a cancel (ActivityTaskCanceled events)."""
    scheduled: dict[int, str] = {}
    cancelled = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        if event.HasField("activity_task_canceled_event_attributes"):
            attrs2 = event.activity_task_canceled_event_attributes
            cancelled.append(scheduled[attrs2.scheduled_event_id])
    return cancelled


async def pending_stage_started(handle: WorkflowHandle[Any, Any], stage: str) -> None:
    """Assert `stage` is running (pending activity STARTED) in the run."""
    description = await handle.describe()
    states = {p.activity_type.name: p.state for p in description.raw_description.pending_activities}
    assert states.get(stage) == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED, states
