"""`python -m worker` as a process: a SIGKILL mid-stage, a restart, and the run still completes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

import embedded
from tests.helpers import eventually
from tests.workflows.support import Stacks, assert_stage, worker_process
from workflows import search_attributes

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


async def run_worker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    """`python -m worker <args>` run to its end with `env` on top of this process's own."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "worker", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
    )


async def test_sigkill_mid_stage_then_restart_completes(stacks: Stacks) -> None:
    """A worker killed inside a stage is replaced; the run completes, one lease, no duplicates."""
    env = stacks.env(LOG_LEVEL="warning")
    async with stacks.open(env, workers=False) as st:
        course = await st.create_course(simulation={"hold_at_step": 3, "hold_seconds": 2})
        with worker_process(env) as first:
            _, handle = await st.start(course)
            await eventually(lambda: assert_stage(handle, "structure_generation"), 30)
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert len(await st.leases.usage(course.user_id)) == 1
        with worker_process(env):
            outcome = await handle.result()
        assert outcome.outcome == "completed"
        assert await st.statuses(course.course_id) == CHAIN
        assert await st.leases.usage(course.user_id) == []


async def test_sigterm_stops_the_worker_gracefully(stacks: Stacks, tmp_path: Path) -> None:
    """`python -m worker` freezes its start-up heap before it polls (`heap`, WORKER_GC_FREEZE)
    and serves its metrics on WORKER_METRICS_PORT while it polls; SIGTERM makes it shut its
    workers down and exit 0."""
    client = stacks.client
    env = stacks.env(LOG_LEVEL="info", LOG_FORMAT="json", WORKER_GC_FREEZE="true")
    output = tmp_path / "worker.log"
    with worker_process(env, output=output) as process:

        async def polling() -> None:
            request = DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=stacks.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
            try:
                description = await client.workflow_service.describe_task_queue(request)
            except RPCError as exc:  # a busy dev server may cancel one describe: ask again
                raise AssertionError(f"describe failed: {exc}") from exc
            assert description.pollers

        await eventually(polling, 30)
        metrics = f"http://127.0.0.1:{env['WORKER_METRICS_PORT']}/metrics"
        async with httpx.AsyncClient() as http:
            served = (await http.get(metrics)).text
        assert "temporal_worker_task_slots_available" in served
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    lines = [json.loads(line) for line in output.read_text().splitlines() if line.startswith("{")]
    events = [str(line.get("event")) for line in lines]
    (frozen,) = [line for line in lines if line.get("event") == "start-up heap frozen"]
    assert frozen["objects"] > 10_000, frozen
    polled = next(i for i, event in enumerate(events) if event.startswith("worker polling"))
    assert events.index("start-up heap frozen") < polled, events


async def test_worker_refuses_a_schema_that_is_behind(
    empty_database: str, temporal_client: Client, redis_url: str
) -> None:
    """Against an unmigrated database the worker exits non-zero saying the schema is behind."""
    env = {
        "DATABASE_URL": empty_database,
        "REDIS_URL": redis_url,
        "TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
        "WORKER_METRICS_PORT": "0",
    }
    result = await run_worker(env)
    assert result.returncode != 0
    assert b"schema is behind: run migrations (python -m db migrate)" in result.stderr


async def test_setup_search_attributes_is_idempotent(temporal_client: Client) -> None:
    """`python -m worker setup-search-attributes` on a server that has them adds nothing."""
    env = {"TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host}
    result = await run_worker(env, "setup-search-attributes")
    assert result.returncode == 0, result.stderr
    assert b"none (all present)" in result.stdout


async def test_setup_search_attributes_registers_them_on_a_bare_server() -> None:
    """On a server without them, the command adds all five as Keyword, then nothing the 2nd time."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(embedded.venv_binary("temporal")),
        ui=False,
        dev_server_log_level="error",
    )
    try:
        address = {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host}
        outputs = []
        for _ in range(2):
            result = await run_worker(address, "setup-search-attributes")
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout.decode())
        assert all(name in outputs[0] for name in search_attributes.NAMES)
        assert "none (all present)" in outputs[1]
    finally:
        await env.shutdown()


async def test_stages_only_with_no_simulated_stage_is_refused() -> None:
    """`python -m worker stages` with SIMULATED_STAGES=none has nothing to serve: exit 2."""
    result = await run_worker({"SIMULATED_STAGES": "none"}, "stages")
    assert result.returncode == 2
    assert b"SIMULATED_STAGES names no stage to serve" in result.stderr
