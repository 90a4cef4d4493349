"""Helpers for the workflow tests: stacks of a test's own (workers on its own task queues, store
handles, courses started as the gateway starts them) and readings of a run's history."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

import embedded
from admission import Leases, create_redis
from db.repository import CourseRepository
from settings import Settings
from tests.factories import insert_course, insert_user, make_settings, queue_env, write_epoch
from tiers import parse_tier
from workflows.course_generation import CourseGenerationWorkflow
from workflows.start import start_operation
from workflows.types import AdmissionRequest, AdmissionResult, CourseGenerationInput

ROOT = Path(__file__).resolve().parents[2]
STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
SCHEDULED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED


@dataclasses.dataclass(frozen=True)
class Course:
    course_id: str
    user_id: str
    tier: str


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
        simulation: Mapping[str, Any] | None = None,
        user_id: str | None = None,
    ) -> Course:
        """A course of `user_id`, or of a fresh owner with a `tier` profile, whose progress
        document carries the simulation knobs (none by default) and `files` when given."""
        owner = user_id or await insert_user(self.pool, tier)
        course_id = await insert_course(self.pool, owner, simulation=simulation or {}, files=files)
        return Course(course_id, owner, tier)

    async def start(
        self,
        course: Course,
        token: str | None = None,
        execution_timeout: int | None = None,
        webhook_url: str | None = None,
    ) -> tuple[AdmissionResult, WorkflowHandle[Any, Any]]:
        """Update-with-start exactly as the gateway does it (`execution_timeout` overrides the
        settings' one); returns the answer and the run."""
        inp = CourseGenerationInput(
            course.course_id,
            course.user_id,
            course.tier,
            uuid.uuid4().hex,
            token or uuid.uuid4().hex,
            webhook_url,
        )
        policy = self.settings.admission.policy(parse_tier(course.tier)[0])
        operation = start_operation(
            inp,
            task_queue=self.settings.temporal.task_queue,
            execution_timeout_seconds=execution_timeout
            or self.settings.workflow.execution_timeout_seconds,
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


@dataclasses.dataclass(frozen=True)
class Stacks:
    """Opens stacks of one test's own on the session's stores and dev server."""

    client: Client
    pool: asyncpg.Pool
    database_url: str
    redis_url: str
    key_prefix: str
    task_queue: str

    def env(self, **values: str) -> dict[str, str]:
        """The environment of a worker of this test's own: the session's stores and dev server,
        the test's task queues, a fresh Redis key prefix under the session's (its epoch written
        by `open`), 1 s heartbeats, zero-length simulated stages, a free port for its metrics
        and no reconciler Schedule; then `values`."""
        return {
            "TEMPORAL_ADDRESS": self.client.service_client.config.target_host,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            **queue_env(self.task_queue, f"{self.key_prefix}:{uuid.uuid4().hex[:8]}"),
            "STAGE_HEARTBEAT_TIMEOUT_SECONDS": "1",
            "SIMULATED_STAGE_SECONDS": "0",
            "WORKER_METRICS_PORT": str(embedded.free_port()),
            "RECONCILE_INTERVAL_SECONDS": "0",
            **values,
        }

    @contextlib.asynccontextmanager
    async def open(
        self,
        env: Mapping[str, str] | None = None,
        /,
        *,
        workers: bool = True,
        repository: CourseRepository | None = None,
        **values: str,
    ) -> AsyncIterator[Stack]:
        """A stack whose settings are `env` (by default `self.env()`) with `values` on top,
        running both workers of `worker.build_workers` unless `workers` is false; `repository`
        replaces the workers' own (to inject faults)."""
        from worker import build_workers

        settings = make_settings(self.env() if env is None else env, **values)
        redis = create_redis(settings.stores.redis_dsn)
        leases = Leases(redis, settings.stores.redis_key_prefix)
        await write_epoch(redis, settings.stores.redis_key_prefix)
        stack = Stack(self.client, settings, self.pool, CourseRepository(self.pool), leases)
        try:
            if workers:
                built = build_workers(self.client, settings, self.pool, redis, repository)
                async with running(built):
                    yield stack
            else:
                yield stack
        finally:
            await redis.aclose()


@contextlib.asynccontextmanager
async def running(workers: list[Worker]) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield


@contextlib.contextmanager
def worker_process(
    env: Mapping[str, str], *args: str, output: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m worker <args>` as a process with `env` on top of this one's, its stdout and
    stderr written to `output` (default: discarded); killed at the end if still running."""
    with contextlib.ExitStack() as files:
        sink = files.enter_context(output.open("wb")) if output else subprocess.DEVNULL
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=sink,
            stderr=sink,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


async def scheduled_activities(
    handle: WorkflowHandle[Any, Any], *, local: bool = True
) -> list[str]:
    """Activity type names in the order the run scheduled them; with `local`, the local
    activities too (each recorded once, as a marker, when it completed or failed for good)."""
    names = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif local and event.HasField("marker_recorded_event_attributes"):
            names += _local_activity(event.marker_recorded_event_attributes)
    return names


async def scheduled_options(handle: WorkflowHandle[Any, Any], activity_type: str) -> Any:
    """The scheduling attributes (queue, timeouts, priority) of the run's first
    ActivityTaskScheduled event of `activity_type`."""
    async for event in handle.fetch_history_events():
        attributes = event.activity_task_scheduled_event_attributes
        scheduled = event.HasField("activity_task_scheduled_event_attributes")
        if scheduled and attributes.activity_type.name == activity_type:
            return attributes
    raise AssertionError(f"{activity_type} was never scheduled")


def _local_activity(marker: Any) -> list[str]:
    if marker.marker_name != "core_local_activity":
        return []
    data = json.loads(marker.details["data"].payloads[0].data)
    return [str(data["activity_type"])]


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


async def assert_stage(
    handle: WorkflowHandle[Any, Any], stage: str, state: PendingActivityState.ValueType = STARTED
) -> None:
    """Assert the run has `stage` pending in `state` (by default: running on a worker)."""
    description = await handle.describe()
    states = {p.activity_type.name: p.state for p in description.raw_description.pending_activities}
    assert states.get(stage) == state, states
