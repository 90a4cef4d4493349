"""`python -m bench.gateway`: gateway start and status latency at 20 concurrent clients.

The API runs as its own process (`python -m api`, uvicorn) against a dev server, PostgreSQL and
Redis. The workers run in this process by default (`BENCH_WORKER=inline`: `worker.build_workers`,
exactly production's worker configuration, plus the baseline's worker); `BENCH_WORKER=process`
runs production's `python -m worker` and the baseline's worker (`python -m bench.bare`) as two
more processes instead. On this 2-core machine the process layout did not
help: at 20 clients the dev server, PostgreSQL and the Python processes saturate both cores
whichever way the workers are laid out (start p95 1087 ms inline vs 1179 ms as processes, bare
407 vs 414 ms), so the default stays inline. In alternating rounds on the same server it
measures:

- start: `POST /api/v1/courses/{id}/generation` (auth, course and tier reads, update-with-start
  answered after the lease and the claim) next to a bare update-with-start whose update is
  answered after one no-op local activity (the bare run then ends: no tail);
- status: `GET /api/v1/courses/{id}/generation` (auth, course row, tier and a `describe()` of the
  run, concurrently) next to a bare `describe()`;
- attribution only: our workflow's update-with-start called directly (no gateway).

Before each measured step the bench waits until every run started so far is past admission and
step 1 (`settle`), so a step never pays for the previous step's runs: without it the first step
after the warm-up absorbed the warm-up's 200 run tails (bare p95 1227 ms, faster than the
gateway's). Each start still pays for the tails of the runs its own step started, which is
the real cost of our workflow (two progress writes and the stage scheduling after the answer)
next to the baseline's (its close).

The gateway's requests go out through `bench.common.RawHttp`, a bare keep-alive HTTP/1.1 client
(~0.1 ms of CPU per request, where httpx spent ~3 ms in this same process: it measured itself).

Targets: start p95 ≤ 100 ms and ≤ 1.5× the bare update-with-start; status p95 ≤ 2× the bare
describe.
Started runs then wait in the stage worker's backlog (`STAGE_CAPACITY` slots, a 3600 s simulated
stage), so at most that many heartbeat while the rounds run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from bench import bare, processes
from bench.common import (
    RawHttp,
    Stack,
    freeze_heap_as_a_worker_does,
    local_stack,
    percentile,
    settle,
)
from tests import factories
from workflows.types import workflow_id_for

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
WORKER_MODE = os.environ.get("BENCH_WORKER", "inline")  # "inline" | "process"
PER_CLIENT = int(os.environ.get("BENCH_PER_CLIENT", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
Course = tuple[str, str, str]  # course id, its owner's user id, the owner's token


@dataclasses.dataclass(frozen=True)
class Latencies:
    label: str
    samples: list[float]

    def p(self, q: float) -> float:
        return percentile(self.samples, q)

    def line(self) -> str:
        return (
            f"{self.label:<44} n={len(self.samples):<5} p50={self.p(50):7.2f} ms "
            f"p95={self.p(95):7.2f} ms p99={self.p(99):7.2f} ms"
        )


async def clients(label: str, call: Callable[[int], Awaitable[None]]) -> Latencies:
    """`CLIENTS` concurrent clients, each making `PER_CLIENT` calls one after another."""
    samples: list[float] = []

    async def client(number: int) -> None:
        for i in range(PER_CLIENT):
            began = time.perf_counter()
            await call(number * PER_CLIENT + i)
            samples.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return Latencies(label, samples)


@dataclasses.dataclass
class Bench:
    client: Client
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    queue: str
    started: list[Course] = dataclasses.field(default_factory=list)
    raw: RawHttp | None = None

    def wire(self) -> RawHttp:
        """The gateway requests' client: `RawHttp` on the address of `http`. httpx costs as
        much CPU per request as the gateway's own work, so it would measure itself."""
        if self.raw is None:
            self.raw = RawHttp(self.http.base_url.host, self.http.base_url.port or 80)
        return self.raw

    async def new_courses(self, count: int) -> list[Course]:
        """One user (own token) per course, so no tier limit is reached."""
        made = []
        for _ in range(count):
            user = await factories.insert_user(self.pool)
            course = await factories.insert_course(
                self.pool, user, simulation={"stage_seconds": 3600}
            )
            made.append((course, user, factories.hs_token(user)))
        return made

    async def settle(self, timeout: float = 120) -> None:
        """Wait until every started run is past admission and step 1 (its tail done), so one
        measured step does not pay for the previous step's runs."""
        await settle(self.pool, timeout)

    async def gateway_start(self) -> Latencies:
        courses = await self.new_courses(CLIENTS * PER_CLIENT)

        async def start(index: int) -> None:
            course, _, token = courses[index]
            path = f"/api/v1/courses/{course}/generation"
            status, body = await self.wire().request("POST", path, factories.bearer(token))
            assert status == 202, body

        result = await clients("gateway start (POST .../generation)", start)
        self.started.extend(courses)
        return result

    async def bare_start(self) -> Latencies:
        async def start(_: int) -> None:
            await bare.bare_start(self.client, bare.bare_queue(self.queue))

        return await clients("bare update-with-start (1 local activity)", start)

    async def direct_start(self) -> Latencies:
        """Attribution only: our workflow's update-with-start called without the gateway."""
        from workflows.course_generation import CourseGenerationWorkflow
        from workflows.start import start_operation
        from workflows.types import AdmissionRequest, CourseGenerationInput

        courses = await self.new_courses(CLIENTS * PER_CLIENT)

        async def start(index: int) -> None:
            course, user, _ = courses[index]
            inp = CourseGenerationInput(course, user, "FREE", "bench", uuid.uuid4().hex)
            operation = start_operation(
                inp, task_queue=self.queue, execution_timeout_seconds=21600, priority_key=4
            )
            result = await self.client.execute_update_with_start_workflow(
                CourseGenerationWorkflow.admission,
                AdmissionRequest(inp.start_token),
                start_workflow_operation=operation,
            )
            assert result.decision == "admitted", result

        return await clients("  (direct update-with-start, our workflow)", start)

    async def gateway_status(self) -> Latencies:
        async def status(index: int) -> None:
            course, _, token = self.started[index % len(self.started)]
            path = f"/api/v1/courses/{course}/generation"
            status, body = await self.wire().request("GET", path, factories.bearer(token))
            assert status == 200, body

        return await clients("gateway status (GET .../generation)", status)

    async def bare_describe(self) -> Latencies:
        async def describe(index: int) -> None:
            course = self.started[index % len(self.started)][0]
            await self.client.get_workflow_handle(workflow_id_for(course)).describe()

        return await clients("bare describe()", describe)


def workers(stack: Stack, env: dict[str, str]) -> list[Worker]:
    """`BENCH_WORKER=inline` (the default): the workers in this process, next to the load
    generator."""
    from worker import build_workers

    settings = factories.make_settings(env)  # as `python -m worker` reads them from `env`
    client = stack.env.client
    baseline = bare.bare_worker(
        client, settings.worker, bare.bare_queue(settings.temporal.task_queue)
    )
    return [*build_workers(client, settings, stack.pool, stack.redis), baseline]


def worker_processes(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """`BENCH_WORKER=process`: production's `python -m worker` and the bare baseline's worker,
    each in its own process, as production runs workers."""
    return [processes.worker_process(env), processes.bare_worker_process(env)]


async def rounds(bench: Bench) -> dict[str, list[float]]:
    totals: dict[str, list[float]] = {}
    await bench.bare_start()  # warm-up of both paths (sandbox, caches, connections)
    await bench.gateway_start()
    steps = [bench.bare_start, bench.gateway_start, bench.bare_describe, bench.gateway_status]
    for number in range(ROUNDS):
        order = steps if number % 2 == 0 else [*steps[1::-1], *steps[:1:-1]]
        for step in [*order, bench.direct_start]:
            await bench.settle()
            result = await step()
            print(f"  round {number + 1} {result.line()}", flush=True)
            totals.setdefault(result.label, []).extend(result.samples)
    if bench.raw is not None:
        await bench.raw.aclose()
    return totals


def report(totals: dict[str, list[float]]) -> None:
    stats = {label: Latencies(label, samples) for label, samples in totals.items()}
    for item in stats.values():
        print(item.line())
    direct = stats["  (direct update-with-start, our workflow)"]
    start, bare = (
        stats["gateway start (POST .../generation)"],
        stats["bare update-with-start (1 local activity)"],
    )
    status, describe = stats["gateway status (GET .../generation)"], stats["bare describe()"]
    start_ratio, status_ratio = start.p(95) / bare.p(95), status.p(95) / describe.p(95)
    start_met = start.p(95) <= 100 and start_ratio <= 1.5
    print(
        f"  gateway overhead over our own update-with-start: p50 "
        f"{start.p(50) - direct.p(50):+.1f} ms, p95 {start.p(95) - direct.p(95):+.1f} ms"
    )
    print(
        f"  start p95 {start.p(95):.1f} ms = {start_ratio:.2f}x bare "
        f"(target <= 100 ms and <= 1.5x): {'MET' if start_met else 'NOT MET'}"
    )
    print(
        f"  status p95 {status.p(95):.1f} ms = {status_ratio:.2f}x bare describe "
        f"(target <= 2x): {'MET' if status_ratio <= 2 else 'NOT MET'}",
        flush=True,
    )


async def main() -> None:
    queue = f"bench-gw-{uuid.uuid4().hex[:8]}"
    async with local_stack("gateway") as stack:
        api_env = await processes.stack_env(stack, queue)
        print(
            f"gateway benchmark: {CLIENTS} concurrent clients x {PER_CLIENT} calls x {ROUNDS} "
            f"rounds per side; API process (uvicorn), workers {WORKER_MODE}, "
            f"dev server (in-memory), "
            f"{stack.pg.source} PostgreSQL, {stack.redis_store.source} Redis",
            flush=True,
        )
        procs: list[subprocess.Popen[bytes]] = []
        with processes.stopped_at_exit(procs):
            async with contextlib.AsyncExitStack() as running:
                if WORKER_MODE == "inline":
                    for worker in workers(stack, api_env):
                        await running.enter_async_context(worker)
                    freeze_heap_as_a_worker_does()
                else:
                    procs.extend(worker_processes(api_env))
                http, api = await processes.gateway(api_env, CLIENTS)
                procs.append(api)
                running.push_async_callback(http.aclose)
                report(await rounds(Bench(stack.env.client, stack.pool, http, queue)))


if __name__ == "__main__":
    asyncio.run(main())
