"""The bare baseline of the start benchmarks: an update-with-start whose update is answered after
one no-op local activity, then the run ends (no tail). `python -m bench.bare` serves its worker
as a process of its own until SIGTERM, beside production's `python -m worker`.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.client import Client, WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.worker import Worker

    from settings import WorkerSettings
    from worker import orchestration_options

_TIMEOUT = timedelta(seconds=10)


@activity.defn(name="bench_gateway_noop")
async def noop() -> None:
    return None


@workflow.defn(name="BenchBareAdmission")
class BareAdmission:
    """The baseline: an update answered after one no-op local activity, then the run ends."""

    def __init__(self) -> None:
        self._answered = False

    @workflow.run
    async def run(self, token: str) -> str:
        await workflow.wait_condition(lambda: self._answered)
        return token

    @workflow.update
    async def admit(self, token: str) -> str:
        await workflow.execute_local_activity(noop, start_to_close_timeout=_TIMEOUT)
        self._answered = True
        return "admitted"


def bare_queue(task_queue: str) -> str:
    """The baseline's own queue beside the orchestration queue `task_queue`."""
    return f"{task_queue}-bare"


def baseline_worker(
    client: Client, tuning: WorkerSettings, queue: str, workflows: list[type], activities: list[Any]
) -> Worker:
    """A baseline's worker set up as ours: the same `WORKER_*` options, and the baseline's own
    package passed through the sandbox as ours are (else the sandbox imports its module again
    for every run, a cost ours does not pay)."""
    options = orchestration_options(
        tuning, data_converter=client.data_converter, passthrough=("bench",)
    )
    return Worker(client, task_queue=queue, workflows=workflows, activities=activities, **options)


def bare_worker(client: Client, tuning: WorkerSettings, queue: str) -> Worker:
    return baseline_worker(client, tuning, queue, [BareAdmission], [noop])


async def bare_start(client: Client, queue: str) -> None:
    """One update-with-start of a new baseline run, awaited until its update answers."""
    operation = WithStartWorkflowOperation(
        BareAdmission.run,
        "token",
        id=f"bench-bare-{uuid.uuid4().hex}",
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await client.execute_update_with_start_workflow(
        BareAdmission.admit, "token", start_workflow_operation=operation
    )


async def serve() -> None:
    """The baseline's worker on `bare_queue(TEMPORAL_TASK_QUEUE)` until SIGTERM."""
    import temporal_connect
    from settings import load_settings
    from worker.running import run_until

    settings = load_settings(env_file=None)
    client = await temporal_connect.connect(settings.temporal)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = bare_worker(client, settings.worker, bare_queue(settings.temporal.task_queue))
    await run_until([worker], stop, freeze_heap=settings.worker.gc_freeze)  # as `python -m worker`


if __name__ == "__main__":
    asyncio.run(serve())
