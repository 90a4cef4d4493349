"""Reconciler benchmark: one pass over `BENCH_RECONCILE_COURSES` (default 10,000) active courses
and as many leases, all in agreement (the steady state: nothing to repair).

Each course has an open `CourseGenerationWorkflow` run (started on a task queue no worker
polls, so it stays RUNNING), its row names that run and its lease is held. The pass therefore
reads everything in pages and repairs nothing: one keyset page of rows, one visibility query
and one lease read per 500 courses, one ZSCAN page and one read of the rows naming their runs
per ~500 leases (every lease is vouched for by its course, so no visibility query). Also
prints the CPU the dev server used during the pass.
Baseline, in the same run on the same stores: reading the same rows and leases all at once
(one SELECT, one ZRANGE) — what the pass must not do, but the cheapest possible read of it.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

from temporalio.client import Client

from admission import RunRef
from bench.common import local_stack, ratio_line
from bench.processes import CpuMeter, dev_server_pid
from reconciler.wiring import build_reconciler
from tests.factories import insert_user, make_settings, write_epoch
from workflows.types import workflow_id_for

COURSES = int(os.environ.get("BENCH_RECONCILE_COURSES", "10000"))
STARTS_IN_FLIGHT = 50


async def start_runs(client: Client, course_ids: list[str], queue: str) -> dict[str, str]:
    """course id → run id of an open run that no worker will ever pick up."""
    gate = asyncio.Semaphore(STARTS_IN_FLIGHT)

    async def one(course_id: str) -> tuple[str, str]:
        async with gate:
            handle = await client.start_workflow(
                "CourseGenerationWorkflow", id=workflow_id_for(course_id), task_queue=queue
            )
            return course_id, handle.result_run_id or ""

    return dict(await asyncio.gather(*(one(c) for c in course_ids)))


async def main() -> None:
    async with local_stack("reconcile") as stack:
        client = stack.env.client
        prefix = f"bench-reconcile-{uuid.uuid4().hex[:8]}"
        settings = make_settings(
            DATABASE_URL=stack.url, REDIS_URL=stack.redis_store.url, REDIS_KEY_PREFIX=prefix,
            TEMPORAL_ADDRESS=client.service_client.config.target_host,
        )  # fmt: skip
        reconciler = build_reconciler(settings, stack.pool, stack.redis, client)
        leases = reconciler._s.leases
        await write_epoch(stack.redis, prefix)
        user = await insert_user(stack.pool, "PREMIUM")
        course_ids = sorted(str(uuid.uuid4()) for _ in range(COURSES))
        began = time.perf_counter()
        runs = await start_runs(client, course_ids, f"bench-unpolled-{uuid.uuid4().hex[:6]}")
        print(f"started {COURSES} runs in {time.perf_counter() - began:.1f}s", flush=True)
        await stack.pool.executemany(
            "INSERT INTO public.courses (id, user_id, title, generation_status, run_id,"
            " last_progress_update) VALUES ($1, $2, 'bench', 'analyzing_task', $3, now())",
            [(c, user, runs[c]) for c in course_ids],
        )
        now = time.time()
        for course_id in course_ids:
            run = RunRef(runs[course_id], now)
            await leases.restore(user, workflow_id_for(course_id), run, now + 3600, now)
        await wait_until_listed(client, COURSES)
        address = client.service_client.config.target_host
        meter = CpuMeter({"dev server": dev_server_pid(address) or 0, "this process": os.getpid()})
        meter.start()
        began = time.perf_counter()
        summary = await reconciler.run_pass()
        took = time.perf_counter() - began
        used = meter.line()
        assert summary.repairs == [], summary.repairs[:3]
        began = time.perf_counter()
        await stack.pool.fetch("SELECT * FROM public.courses WHERE generation_status IS NOT NULL")
        await stack.redis.zrange(leases.keys.all, 0, -1, withscores=True)
        baseline = time.perf_counter() - began
        print(
            f"one pass: {summary.courses} courses, {summary.leases} leases, "
            f"{len(summary.repairs)} repairs, epoch written {summary.epoch_written}: "
            f"{took:.2f}s ({took / max(summary.courses, 1) * 1e3:.3f} ms per course); "
            f"read-all baseline {baseline:.2f}s"
        )
        print(f"  during the pass, {used}", flush=True)
        print(ratio_line("reconcile pass vs read-all", took, baseline, "informational"))


async def wait_until_listed(client: Client, expected: int) -> None:
    """Visibility lags: wait until it lists every run open, so the pass describes none."""
    query = "WorkflowType = 'CourseGenerationWorkflow' AND ExecutionStatus = 'Running'"
    for _ in range(600):
        if (await client.count_workflows(query)).count >= expected:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("visibility never listed every run")


if __name__ == "__main__":
    asyncio.run(main())
