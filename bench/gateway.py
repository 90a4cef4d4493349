"""`python -m bench.gateway`: gateway start and status latency at 20 concurrent clients.

The API runs as its own process (`python -m api`, uvicorn) against a dev server, PostgreSQL and
Redis. The workers run in this process by default (`BENCH_WORKER=inline`: `worker.build_workers`,
exactly production's worker configuration, plus the baseline's worker); `BENCH_WORKER=process`
runs production's `python -m worker` and the baseline's worker (`python -m bench.gateway
bare-worker`) as two more processes instead. On this 2-core machine the process layout did not
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

Targets: start p95 ≤ 100 ms and ≤ 1.5× the bare update-with-start; status p95 ≤ 20 ms.
Started runs then wait in the stage worker's backlog (`STAGE_CAPACITY` slots, a 3600 s simulated
stage), so at most that many heartbeat while the rounds run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import asyncpg
    import httpx
    from redis.asyncio import Redis
    from temporalio.client import Client, WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.worker import Worker

    import embedded
    from bench.common import local_stack, percentile
    from tests import factories
    from workflows.types import workflow_id_for

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
WORKER_MODE = os.environ.get("BENCH_WORKER", "inline")  # "inline" | "process"
PER_CLIENT = int(os.environ.get("BENCH_PER_CLIENT", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
_TIMEOUT = timedelta(seconds=10)
Course = tuple[str, str, str]  # course id, its owner's user id, the owner's token


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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = await self.pool.fetchval(
                "SELECT count(*) FROM public.courses"
                " WHERE generation_status IN ('pending', 'initializing')"
            )
            if not busy:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the last runs' stage scheduling

    async def gateway_start(self) -> Latencies:
        courses = await self.new_courses(CLIENTS * PER_CLIENT)

        async def start(index: int) -> None:
            course, _, token = courses[index]
            response = await self.http.post(
                f"/api/v1/courses/{course}/generation", headers=factories.bearer(token)
            )
            assert response.status_code == 202, response.text

        result = await clients("gateway start (POST .../generation)", start)
        self.started.extend(courses)
        return result

    async def bare_start(self) -> Latencies:
        async def start(_: int) -> None:
            operation = WithStartWorkflowOperation(
                BareAdmission.run,
                "token",
                id=f"bench-bare-{uuid.uuid4().hex}",
                task_queue=f"{self.queue}-bare",
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            await self.client.execute_update_with_start_workflow(
                BareAdmission.admit, "token", start_workflow_operation=operation
            )

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
            response = await self.http.get(
                f"/api/v1/courses/{course}/generation", headers=factories.bearer(token)
            )
            assert response.status_code == 200, response.text

        return await clients("gateway status (GET .../generation)", status)

    async def bare_describe(self) -> Latencies:
        async def describe(index: int) -> None:
            course = self.started[index % len(self.started)][0]
            await self.client.get_workflow_handle(workflow_id_for(course)).describe()

        return await clients("bare describe()", describe)


def api_process(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return _process([sys.executable, "-m", "api"], {**env, "API_PORT": str(port)})


async def wait_ready(http: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("the API did not become ready within 60 s")


def bare_worker(client: Client, queue: str) -> Worker:
    return Worker(client, task_queue=queue, workflows=[BareAdmission], activities=[noop])


def workers(bench: Bench, redis: Redis, env: dict[str, str]) -> list[Worker]:
    """`BENCH_WORKER=inline` (the default): the workers in this process, next to the load
    generator."""
    from worker import build_workers

    settings = factories.make_settings(env)  # as `python -m worker` reads them from `env`
    bare = bare_worker(bench.client, f"{bench.queue}-bare")
    return [*build_workers(bench.client, settings, bench.pool, redis), bare]


def worker_processes(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """`BENCH_WORKER=process`: production's `python -m worker` and the bare baseline's worker,
    each in its own process, as production runs workers."""
    return [
        _process([sys.executable, "-m", "worker"], env),
        _process([sys.executable, "-m", "bench.gateway", "bare-worker"], env),
    ]


def _process(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def serve_bare_worker() -> None:
    """`python -m bench.gateway bare-worker`: the baseline's worker until SIGTERM."""
    import signal

    import temporal_connect
    from settings import load_settings

    settings = load_settings(env_file=None).temporal
    client = await temporal_connect.connect(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with bare_worker(client, f"{settings.task_queue}-bare"):
        await stop.wait()


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
        f"(target <= 20 ms): {'MET' if status.p(95) <= 20 else 'NOT MET'}",
        flush=True,
    )


async def main() -> None:
    queue = f"bench-gw-{uuid.uuid4().hex[:8]}"
    async with local_stack("gateway") as stack:
        port = embedded.free_port()
        api_env = {
            "DATABASE_URL": stack.url,
            "REDIS_URL": stack.redis_store.url,
            **factories.queue_env(queue, f"bench-gw-{uuid.uuid4().hex[:8]}"),
            "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
            "SUPABASE_JWT_SECRET": factories.JWT_SECRET,
            "START_RATE_LIMIT_PER_MINUTE": "0",
            "ENVIRONMENT": "development",
            "LOG_FORMAT": "json",
        }
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30)
        print(
            f"gateway benchmark: {CLIENTS} concurrent clients x {PER_CLIENT} calls x {ROUNDS} "
            f"rounds per side; API process (uvicorn), workers {WORKER_MODE}, "
            f"dev server (in-memory), "
            f"{stack.pg.source} PostgreSQL, {stack.redis_store.source} Redis",
            flush=True,
        )
        bench = Bench(stack.env.client, stack.pool, http, queue)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            await factories.write_epoch(stack.redis, api_env["REDIS_KEY_PREFIX"])
            async with contextlib.AsyncExitStack() as running:
                if WORKER_MODE == "inline":
                    for worker in workers(bench, stack.redis, api_env):
                        await running.enter_async_context(worker)
                else:
                    procs.extend(worker_processes(api_env))
                procs.append(api_process(api_env, port))
                await wait_ready(http, procs[-1])
                report(await rounds(bench))
        finally:
            for proc in procs:
                embedded.stop_process(proc)
            await http.aclose()


if __name__ == "__main__":
    asyncio.run(serve_bare_worker() if sys.argv[1:] == ["bare-worker"] else main())
