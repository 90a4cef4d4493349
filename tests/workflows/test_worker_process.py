"""`python -m worker` as a process: a SIGKILL mid-stage, a restart, and the run still completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from tests.helpers import eventually
from tests.workflows.conftest import make_settings, open_stack, pending_stage_started

ROOT = Path(__file__).resolve().parents[2]
CHAIN = [
    "pending",
    "initializing",
    "analyzing_task",
    "generating_structure",
    "generating_content",
    "finalizing",
    "completed",
]


@contextmanager
def worker_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "worker"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_sigkill_mid_stage_then_restart_completes(
    temporal_client: Client,
    pg_pool: asyncpg.Pool,
    database_url: str,
    redis_url: str,
    key_prefix: str,
    task_queue: str,
) -> None:
    """A worker killed inside a stage is replaced; the run completes, one lease, no duplicates."""
    prefix = f"{key_prefix}:{uuid.uuid4().hex[:8]}"
    settings = make_settings(task_queue, prefix)
    env = {
        "TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "TEMPORAL_STAGE_TASK_QUEUE": settings.temporal.stage_task_queue,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "STAGE_HEARTBEAT_TIMEOUT_SECONDS": "1",
        "SIMULATED_STAGE_SECONDS": "0",
        "LOG_LEVEL": "warning",
    }
    async with open_stack(temporal_client, pg_pool, redis_url, settings, with_workers=False) as st:
        course = await st.create_course(simulation={"hold_at_step": 3, "hold_seconds": 2})
        with worker_process(env) as first:
            _, handle = await st.start(course)
            await eventually(lambda: pending_stage_started(handle, "structure_generation"), 30)
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert len(await st.leases.usage(course.user_id)) == 1
        with worker_process(env):
            outcome = await handle.result()
        assert outcome.outcome == "completed"
        assert await st.statuses(course.course_id) == CHAIN
        assert await st.leases.usage(course.user_id) == []


async def test_sigterm_stops_the_worker_gracefully(
    database_url: str, redis_url: str, temporal_client: Client, task_queue: str
) -> None:
    """SIGTERM makes `python -m worker` shut its workers down and exit 0."""
    env = {
        "TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "TEMPORAL_STAGE_TASK_QUEUE": f"{task_queue}-stages",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }
    with worker_process(env) as process:

        async def polling() -> None:
            description = await temporal_client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=temporal_client.namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            )
            assert description.pollers

        await eventually(polling, 30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
