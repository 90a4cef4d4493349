"""`python -m bench.orchestration`: end-to-end runs/s of the course workflow.

Runs `CourseGenerationWorkflow` with zero-length SIMULATED stages (update-with-start, lease,
claim, progress writes, stages, release) next to a minimal workflow with the same activities —
2 local, 10 on the main queue, 4 on a stage queue, all no-ops — on the same dev server and
workers set up the same way, in alternating rounds. Target: ours ≥ 70 % of the minimal rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import asyncpg
    from redis.asyncio import Redis
    from temporalio.client import Client
    from temporalio.worker import Worker

    from bench.common import Stats, local_stack, percentile
    from tests.factories import insert_course, insert_user, make_settings, queue_env

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
# What one successful course run schedules: reserve_lease and claim_course (local); nine
# progress writes and release_lease (main queue); four stages.
LOCAL, MAIN, STAGE = 2, 10, 4
TARGET = 0.70
_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bench_noop")
async def noop() -> None:
    return None


@workflow.defn(name="BenchMinimalWorkflow")
class MinimalWorkflow:
    """The baseline: the same number and kinds of activities, doing nothing."""

    @workflow.run
    async def run(self, stage_queue: str) -> None:
        for _ in range(LOCAL):
            await workflow.execute_local_activity(noop, start_to_close_timeout=_TIMEOUT)
        for _ in range(MAIN):
            await workflow.execute_activity(noop, start_to_close_timeout=_TIMEOUT)
        for _ in range(STAGE):
            await workflow.execute_activity(
                noop, task_queue=stage_queue, start_to_close_timeout=_TIMEOUT
            )


@dataclasses.dataclass
class Bench:
    client: Client
    pool: asyncpg.Pool
    queue: str  # ours: `<queue>`, `<queue>-stages.<stage>`; the baseline: `<queue>-min[-stages]`


async def timed_round(label: str, run_one: Callable[[int], Awaitable[None]]) -> Stats:
    """`RUNS` runs at once, end to end; the rate is runs / wall time of the round."""
    latencies: list[float] = []

    async def one(index: int) -> None:
        began = time.perf_counter()
        await run_one(index)
        latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(RUNS)))
    return Stats.of(label, latencies, time.perf_counter() - began)


async def ours_round(bench: Bench) -> Stats:
    from workflows.course_generation import CourseGenerationWorkflow
    from workflows.start import start_operation
    from workflows.types import AdmissionRequest, CourseGenerationInput

    courses = []
    for _ in range(RUNS):
        user = await insert_user(bench.pool, "PREMIUM")
        courses.append(
            (await insert_course(bench.pool, user, simulation={"stage_seconds": 0}), user)
        )

    async def run_one(index: int) -> None:
        course_id, user_id = courses[index]
        inp = CourseGenerationInput(course_id, user_id, "PREMIUM", "bench", uuid.uuid4().hex)
        operation = start_operation(
            inp, task_queue=bench.queue, execution_timeout_seconds=3600, priority_key=1
        )
        result = await bench.client.execute_update_with_start_workflow(
            CourseGenerationWorkflow.admission,
            AdmissionRequest(inp.start_token),
            start_workflow_operation=operation,
        )
        assert result.decision == "admitted", result
        outcome = await (await operation.workflow_handle()).result()
        assert outcome.outcome == "completed", outcome

    return await timed_round("course workflow (zero-length stages)", run_one)


async def baseline_round(bench: Bench) -> Stats:
    async def run_one(_: int) -> None:
        await bench.client.execute_workflow(
            MinimalWorkflow.run,
            f"{bench.queue}-min-stages",
            id=f"bench-minimal-{uuid.uuid4().hex}",
            task_queue=f"{bench.queue}-min",
        )

    return await timed_round(f"minimal workflow ({LOCAL + MAIN + STAGE} no-op activities)", run_one)


def workers(bench: Bench, redis: Redis) -> list[Worker]:
    """Ours from `worker.build_workers`; the baseline's built the same way on its own queues."""
    from worker import build_workers, stage_worker

    env = {**queue_env(bench.queue, f"bench-{uuid.uuid4().hex}"), "SIMULATED_STAGE_SECONDS": "0"}
    settings = make_settings(env)
    minimal = Worker(
        bench.client,
        task_queue=f"{bench.queue}-min",
        workflows=[MinimalWorkflow],
        activities=[noop],
    )
    return [
        *build_workers(bench.client, settings, bench.pool, redis),
        minimal,
        stage_worker(bench.client, f"{bench.queue}-min-stages", [noop], settings.stages.capacity),
    ]


async def run(bench: Bench, redis: Redis) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers(bench, redis):
            await stack.enter_async_context(worker)
        await ours_round(bench)  # warm-up: sandbox, caches, connections
        await baseline_round(bench)
        totals: dict[str, list[Stats]] = {"ours": [], "baseline": []}
        for number in range(ROUNDS):
            order = ("baseline", "ours") if number % 2 == 0 else ("ours", "baseline")
            for side in order:
                round_stats = await (ours_round if side == "ours" else baseline_round)(bench)
                print(f"  round {number + 1} {round_stats.line()}", flush=True)
                totals[side].append(round_stats)
    report(combine(totals["ours"]), combine(totals["baseline"]))


def combine(rounds: list[Stats]) -> Stats:
    count = sum(r.count for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    p50 = percentile([r.p50_ms for r in rounds], 50)
    return Stats(rounds[0].label, count, seconds, p50, max(r.p95_ms for r in rounds))


def report(ours: Stats, baseline: Stats) -> None:
    print(ours.line())
    print(baseline.line())
    ratio = ours.rate / baseline.rate if baseline.rate else 0.0
    verdict = "MET" if ratio >= TARGET else "NOT MET"
    print(f"  runs/s ours {ours.rate:.2f}, minimal {baseline.rate:.2f}: ratio {ratio:.0%}")
    print(f"  target >= {TARGET:.0%} of the minimal workflow: {verdict}", flush=True)


async def main() -> None:
    async with local_stack("orchestration") as stack:
        print(
            f"orchestration benchmark: {RUNS} concurrent runs x {ROUNDS} rounds per side, "
            f"dev server (in-memory), {stack.pg.source} PostgreSQL, "
            f"{stack.redis_store.source} Redis"
        )
        bench = Bench(stack.env.client, stack.pool, f"bench-{uuid.uuid4().hex[:8]}")
        await run(bench, stack.redis)


if __name__ == "__main__":
    asyncio.run(main())
