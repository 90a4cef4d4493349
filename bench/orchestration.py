"""`python -m bench.orchestration`: end-to-end runs/s of the course workflow.

Runs `CourseGenerationWorkflow` with zero-length SIMULATED stages (update-with-start, lease,
claim, progress writes, stages, release) next to two minimal workflows of no-op activities on
the same dev server and workers set up the same way, in alternating rounds: one that calls only
the four stage activities (target: ours ≥ 60 % of its rate), the same with the five
`GenerationStatus` upserts a run of ours makes (one before each stage, one at the end: what
keeping the status current costs the server, reported), and the run's former shape of 16
activities (2 local, 10 on the main queue, 4 on the stage queue; reported for comparison).
Also reports each workflow's history events and workflow tasks per completed run (target: ours
≤ 50 events): every event is work for the Temporal server; and each side's CPU per completed
run in this process (workers and client) and in the dev server.
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
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import asyncpg
    from redis.asyncio import Redis
    from temporalio.client import Client, WorkflowHandle
    from temporalio.worker import Worker

    from bench.bare import baseline_worker
    from bench.common import Stats, freeze_heap_as_a_worker_does, local_stack, percentile
    from bench.processes import CpuMeter, dev_server_pid
    from tests.factories import insert_course, insert_user, make_settings, queue_env
    from workflows.search_attributes import GENERATION_STATUS

RUNS = int(os.environ.get("BENCH_RUNS", "30"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
# (local, main queue, stage queue) no-op activities of each baseline, and its status upserts.
FOUR_STAGES = (0, 0, 4, 0)
STATUS_UPSERTS = (0, 0, 4, 5)  # four stages, and GenerationStatus kept current as ours keeps it
FORMER_SHAPE = (2, 10, 4, 0)  # the course run before its writes became local and merged
TARGET = 0.60
EVENTS_TARGET = 50
_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bench_noop")
async def noop() -> None:
    return None


@workflow.defn(name="BenchMinimalWorkflow")
class MinimalWorkflow:
    """The baseline: the same number and kinds of activities, doing nothing; `upserts` status
    upserts, one before each stage activity and the rest at the end."""

    @workflow.run
    async def run(self, stage_queue: str, shape: list[int]) -> None:
        local, main, stage, upserts = shape
        for _ in range(local):
            await workflow.execute_local_activity(noop, start_to_close_timeout=_TIMEOUT)
        for _ in range(main):
            await workflow.execute_activity(noop, start_to_close_timeout=_TIMEOUT)
        for number in range(stage):
            if number < upserts:
                workflow.upsert_search_attributes([GENERATION_STATUS.value_set(f"stage {number}")])
            await workflow.execute_activity(
                noop, task_queue=stage_queue, start_to_close_timeout=_TIMEOUT
            )
        for _ in range(stage, upserts):
            workflow.upsert_search_attributes([GENERATION_STATUS.value_set("completed")])


@dataclasses.dataclass
class Bench:
    client: Client
    pool: asyncpg.Pool
    queue: str  # ours: `<queue>`, `<queue>-stages.<stage>`; the baseline: `<queue>-min[-stages]`
    # This process (workers and client) and, when `main` finds it, the dev server.
    meter: CpuMeter = dataclasses.field(
        default_factory=lambda: CpuMeter({"this process": os.getpid()})
    )
    last: dict[str, WorkflowHandle[Any, Any]] = dataclasses.field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # label: seconds

    def add_cpu(self, label: str, used: dict[str, float]) -> None:
        totals = self.cpu.setdefault(label, {})
        for name, seconds in used.items():
            totals[name] = totals.get(name, 0.0) + seconds


@dataclasses.dataclass
class Shape:
    """History events and workflow tasks of one completed run."""

    events: int = 0
    tasks: int = 0


async def shape_of(handle: WorkflowHandle[Any, Any]) -> Shape:
    shape = Shape()
    async for event in handle.fetch_history_events():
        shape.events += 1
        shape.tasks += event.HasField("workflow_task_completed_event_attributes")
    return shape


async def timed_round(bench: Bench, label: str, run_one: Callable[[int], Awaitable[None]]) -> Stats:
    """`RUNS` runs at once, end to end; the rate is runs / wall time of the round. The CPU the
    processes used meanwhile is added to `bench.cpu[label]`."""
    latencies: list[float] = []

    async def one(index: int) -> None:
        began = time.perf_counter()
        await run_one(index)
        latencies.append((time.perf_counter() - began) * 1000)

    bench.meter.start()
    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(RUNS)))
    seconds = time.perf_counter() - began
    bench.add_cpu(label, bench.meter.read())
    return Stats.of(label, latencies, seconds)


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
        handle = await operation.workflow_handle()
        outcome = await handle.result()
        assert outcome.outcome == "completed", outcome
        bench.last["ours"] = handle

    return await timed_round(bench, "course workflow (zero-length stages)", run_one)


def baseline_round(shape: tuple[int, int, int, int]) -> Callable[[Bench], Awaitable[Stats]]:
    async def timed(bench: Bench) -> Stats:
        async def run_one(_: int) -> None:
            handle = await bench.client.start_workflow(
                MinimalWorkflow.run,
                args=[f"{bench.queue}-min-stages", list(shape)],
                id=f"bench-minimal-{uuid.uuid4().hex}",
                task_queue=f"{bench.queue}-min",
            )
            await handle.result()
            bench.last[str(shape)] = handle

        label = f"minimal workflow {shape} (local, main, stage, upserts)"
        return await timed_round(bench, label, run_one)

    return timed


def key_prefix(bench: Bench) -> str:
    """The benchmark's own lease keys (`main` writes their epoch)."""
    return f"bench-{bench.queue}"


def workers(bench: Bench, redis: Redis) -> list[Worker]:
    """Ours from `worker.build_workers`; the baseline's built the same way on its own queues."""
    from worker import build_workers, stage_worker

    env = {**queue_env(bench.queue, key_prefix(bench)), "SIMULATED_STAGE_SECONDS": "0"}
    settings = make_settings(env)
    minimal = baseline_worker(
        bench.client, settings.worker, f"{bench.queue}-min", [MinimalWorkflow], [noop]
    )
    return [
        *build_workers(bench.client, settings, bench.pool, redis),
        minimal,
        stage_worker(bench.client, f"{bench.queue}-min-stages", [noop], settings.stages.capacity),
    ]


SIDES: dict[str, Callable[[Bench], Awaitable[Stats]]] = {
    "ours": ours_round,
    "four stages": baseline_round(FOUR_STAGES),
    "four stages + status upserts": baseline_round(STATUS_UPSERTS),
    "former shape": baseline_round(FORMER_SHAPE),
}


async def run(bench: Bench, redis: Redis) -> None:
    from tests.factories import write_epoch

    await write_epoch(redis, key_prefix(bench))
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers(bench, redis):
            await stack.enter_async_context(worker)
        freeze_heap_as_a_worker_does()
        for side in SIDES.values():  # warm-up: sandbox, caches, connections
            await side(bench)
        bench.cpu.clear()  # CPU per run counts the measured rounds only
        totals: dict[str, list[Stats]] = {name: [] for name in SIDES}
        for number in range(ROUNDS):
            names = list(SIDES) if number % 2 == 0 else list(reversed(SIDES))
            for name in names:
                round_stats = await SIDES[name](bench)
                print(f"  round {number + 1} {round_stats.line()}", flush=True)
                totals[name].append(round_stats)
        shapes = {name: await shape_of(handle) for name, handle in bench.last.items()}
    report({name: combine(stats) for name, stats in totals.items()}, shapes)
    cpu_report(bench, totals)


def combine(rounds: list[Stats]) -> Stats:
    count = sum(r.count for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    p50 = percentile([r.p50_ms for r in rounds], 50)
    return Stats(rounds[0].label, count, seconds, p50, max(r.p95_ms for r in rounds))


def report(stats: dict[str, Stats], shapes: dict[str, Shape]) -> None:
    ours = stats["ours"]
    for name, side in stats.items():
        print(side.line())
        if name != "ours":
            ratio = ours.rate / side.rate if side.rate else 0.0
            print(f"  runs/s ours {ours.rate:.2f}, {name} {side.rate:.2f}: ratio {ratio:.0%}")
    four = stats["four stages"]
    ratio = ours.rate / four.rate if four.rate else 0.0
    print(f"  target >= {TARGET:.0%} of the four-stage workflow: {_met(ratio >= TARGET)}")
    for name, shape in shapes.items():
        print(f"  {name}: {shape.events} history events, {shape.tasks} workflow tasks per run")
    events = shapes["ours"].events
    print(
        f"  target <= {EVENTS_TARGET} events per run: {_met(events <= EVENTS_TARGET)}", flush=True
    )


def cpu_report(bench: Bench, totals: dict[str, list[Stats]]) -> None:
    """CPU per completed run of each side, by process (PostgreSQL and Redis not counted): with
    both cores busy, the ratio of the rates follows the ratio of these sums."""
    for name, rounds in totals.items():
        runs = sum(r.count for r in rounds)
        used = bench.cpu.get(rounds[0].label, {})
        parts = ", ".join(
            f"{proc} {seconds / runs * 1000:.0f} ms" for proc, seconds in used.items()
        )
        print(f"  CPU per run, {name}: {parts}", flush=True)


def _met(met: bool) -> str:
    return "MET" if met else "NOT MET"


async def main() -> None:
    async with local_stack("orchestration") as stack:
        print(
            f"orchestration benchmark: {RUNS} concurrent runs x {ROUNDS} rounds per side, "
            f"dev server (in-memory), {stack.pg.source} PostgreSQL, "
            f"{stack.redis_store.source} Redis"
        )
        address = stack.env.client.service_client.config.target_host
        pids = {"this process": os.getpid(), "dev server": dev_server_pid(address) or 0}
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        bench = Bench(stack.env.client, stack.pool, queue, CpuMeter(pids))
        await run(bench, stack.redis)


if __name__ == "__main__":
    asyncio.run(main())
