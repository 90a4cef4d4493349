"""`python -m bench burst`: a launch-day burst of starts against one gateway, next to the bare
update-with-start baseline on the same dev server, in the same run.

The burst: `BENCH_BURST_USERS` users per tier (FREE, BASIC, STANDARD, PREMIUM; default 10)
with `BENCH_BURST_COURSES` courses each (default 6), 240 starts fired in a shuffled order from
`BENCH_BURST_CLIENTS` concurrent clients (default 30) at one gateway process (`python -m api`)
and one worker process (`python -m worker`), stages of 1 s. Each client acts as a real one: a
503 is retried after its `Retry-After` (a 409 `closing` too); 202, 200 and 429 are answers, as
is any other 409. The baseline: the same number of bare update-with-starts (`bench.bare`: the
update answers after one no-op local activity; its worker a process of its own) from the same
number of clients.

Reported per burst: answered starts/s, p50/p95 of answered start requests, the 503s, how long
until every admitted course finished and courses/s; then that every course answered 503 ended
with exactly one run or none (Temporal visibility and the course row). Then the same burst with
two worker processes (the gain), and start p95 against the bare one at 20 clients and 1 client.
Targets: start rate >= 50 % of bare, start p95 <= 1.5x bare p95. `BENCH_BURST_QUICK=1`: the first
comparison only (for tuning runs).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import os
import random
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import httpx
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench import bare, processes
from bench.common import local_stack, percentile
from tests import factories
from workflows import search_attributes as sa
from workflows.types import workflow_id_for

TIERS = ("FREE", "BASIC", "STANDARD", "PREMIUM")
USERS = int(os.environ.get("BENCH_BURST_USERS", "10"))
COURSES = int(os.environ.get("BENCH_BURST_COURSES", "6"))
CLIENTS = int(os.environ.get("BENCH_BURST_CLIENTS", "30"))
ROUNDS = int(os.environ.get("BENCH_BURST_ROUNDS", "2"))
QUICK = os.environ.get("BENCH_BURST_QUICK", "") == "1"  # the first comparison only
STAGE_SECONDS = 1.0
ANSWERED = (200, 202, 429)
RETRIED = (503,)
TERMINAL = ("completed", "failed", "cancelled")
RATE_TARGET, P95_TARGET = 0.5, 1.5
Job = tuple[str, str]  # course id, the owner's token


@dataclasses.dataclass
class Burst:
    """One burst's outcome: answered request latencies (ms), every answer's status."""

    label: str
    latencies: list[float] = dataclasses.field(default_factory=list)
    statuses: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    seconds: float = 0.0
    admitted: set[str] = dataclasses.field(default_factory=set)
    unavailable: set[str] = dataclasses.field(default_factory=set)  # courses answered 503
    finished_seconds: float = 0.0
    first_task_waits: list[float] = dataclasses.field(default_factory=list)  # ms
    first_task_takes: list[float] = dataclasses.field(default_factory=list)  # ms

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def merged(self, other: Burst) -> Burst:
        """Two rounds of one burst as one: samples pooled, times added."""
        return Burst(
            self.label,
            self.latencies + other.latencies,
            self.statuses + other.statuses,
            self.seconds + other.seconds,
            self.admitted | other.admitted,
            self.unavailable | other.unavailable,
            self.finished_seconds + other.finished_seconds,
            self.first_task_waits + other.first_task_waits,
            self.first_task_takes + other.first_task_takes,
        )

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    def line(self) -> str:
        counts = " ".join(f"{code}:{n}" for code, n in sorted(self.statuses.items()))
        return (
            f"{self.label:<34} {len(self.latencies):>4} answered in {self.seconds:6.2f} s "
            f"= {self.rate:6.1f}/s  p50={self.p(50):7.0f} ms p95={self.p(95):7.0f} ms  [{counts}]"
        )

    def finish_line(self) -> str:
        done, waits, takes = len(self.admitted), self.first_task_waits, self.first_task_takes
        waited = (
            f"\n{'':<36} first workflow task waited p50 {percentile(waits, 50):.0f} ms, p95 "
            f"{percentile(waits, 95):.0f} ms, took p50 {percentile(takes, 50):.0f} ms, p95 "
            f"{percentile(takes, 95):.0f} ms"
            if waits
            else ""
        )
        return (
            f"{'':<34} {done} admitted courses finished {self.finished_seconds:6.1f} s after the "
            f"first start = {done / self.finished_seconds:5.2f} courses/s{waited}"
        )


async def fire(jobs: list[Job], clients: int, send: Callable[[Job], Awaitable[None]]) -> float:
    """`clients` concurrent clients taking `jobs` in order; the wall time of the whole burst."""
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def client() -> None:
        while not queue.empty():
            await send(queue.get_nowait())

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - began


async def bare_burst(client: Client, queue: str, count: int, clients: int) -> Burst:
    burst = Burst(f"bare update-with-start x{clients}")

    async def send(_: Job) -> None:
        began = time.perf_counter()
        await bare.bare_start(client, queue)
        burst.latencies.append((time.perf_counter() - began) * 1000)
        burst.statuses[200] += 1

    burst.seconds = await fire([("", "")] * count, clients, send)
    return burst


async def new_jobs(pool: asyncpg.Pool, users_per_tier: int, courses: int) -> list[Job]:
    """`courses` courses for each of `users_per_tier` users of every tier, in a shuffled order."""
    jobs = []
    for tier in TIERS:
        for _ in range(users_per_tier):
            user = await factories.insert_user(pool, tier)
            token = factories.hs_token(user)
            for _ in range(courses):
                simulation = {"stage_seconds": STAGE_SECONDS}
                course = await factories.insert_course(pool, user, simulation=simulation)
                jobs.append((course, token))
    random.Random(11).shuffle(jobs)
    return jobs


async def our_burst(
    gateways: Sequence[httpx.AsyncClient],
    pool: asyncpg.Pool,
    jobs: list[Job],
    clients: int,
    label: str,
) -> Burst:
    """`jobs` started from `clients` clients, each request sent to the next of `gateways` in
    turn (a retry too); returns once every admitted course has finished."""
    burst = Burst(label)
    turn = itertools.count()

    async def send(job: Job) -> None:
        course, token = job
        while True:
            http = gateways[next(turn) % len(gateways)]
            began = time.perf_counter()
            response = await http.post(
                f"/api/v1/courses/{course}/generation", headers=factories.bearer(token)
            )
            took = (time.perf_counter() - began) * 1000
            burst.statuses[response.status_code] += 1
            if response.status_code in ANSWERED:
                burst.latencies.append(took)
                if response.status_code != 429:
                    burst.admitted.add(course)
                return
            if response.status_code == 503:
                burst.unavailable.add(course)
            closing = response.status_code == 409 and "closing" in response.text
            if response.status_code not in RETRIED and not closing:
                return
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))

    began = time.perf_counter()
    burst.seconds = await fire(jobs, clients, send)
    await all_finished(pool, burst.admitted)
    burst.finished_seconds = time.perf_counter() - began
    return burst


async def all_finished(pool: asyncpg.Pool, courses: set[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    ids = list(courses)
    while time.monotonic() < deadline:
        done = await pool.fetchval(
            "SELECT count(*) FROM public.courses WHERE id = ANY($1::uuid[])"
            " AND generation_status::text = ANY($2::text[])",
            ids,
            list(TERMINAL),
        )
        if done == len(ids):
            return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"admitted courses still running after {timeout:.0f} s")


FIRST_TASK = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
)


async def first_tasks(client: Client, courses: set[str]) -> tuple[list[float], list[float]]:
    """Of each course's latest run's first workflow task, from the run's history (ms): how long
    it waited for a worker (scheduled to started) and how long the worker took (started to
    completed: the lease and the claim, after which the start is answered)."""
    waits, takes = [], []
    for course in courses:
        history = await client.get_workflow_handle(workflow_id_for(course)).fetch_history()
        times = {}
        for event in history.events:
            if event.event_type in FIRST_TASK and event.event_type not in times:
                times[event.event_type] = event.event_time.ToDatetime()
        scheduled, started, completed = (times[kind] for kind in FIRST_TASK)
        waits.append((started - scheduled).total_seconds() * 1000)
        takes.append((completed - started).total_seconds() * 1000)
    return waits, takes


@dataclasses.dataclass(frozen=True)
class Run:
    run_id: str
    generation_status: str | None

    @property
    def generated(self) -> bool:
        """Admitted: a refused run (`rejected`, or no status: a store did not answer its
        admission, answered 503) generated nothing."""
        return self.generation_status not in (None, "rejected")


async def runs_of(client: Client, course: str) -> list[Run]:
    """The runs Temporal's visibility lists under the course's workflow id."""
    query = f'WorkflowId = "{workflow_id_for(course)}"'
    return [
        Run(execution.run_id, execution.typed_search_attributes.get(sa.GENERATION_STATUS))
        async for execution in client.list_workflows(query)
    ]


async def story(client: Client, course: str, run_id: str) -> str:
    """One run's history in a line (start time, event types, failure messages): what a problem
    report needs to be read."""
    handle = client.get_workflow_handle(workflow_id_for(course), run_id=run_id)
    history = await handle.fetch_history()
    began = history.events[0].event_time.ToDatetime()
    parts = []
    for event in history.events:
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
        failure = ""
        for attribute in ("workflow_execution_failed_event_attributes",):
            if event.HasField(attribute):
                failure = f"({getattr(event, attribute).failure.message})"
        parts.append(f"{kind}{failure}")
    return f"      run {run_id} started {began:%H:%M:%S.%f}: {' '.join(parts)}"


@dataclasses.dataclass
class Check:
    """What the courses answered 503 ended with."""

    one_or_none: int = 0
    also_refused: int = 0  # of those, courses with a refused run beside the one
    problems: list[str] = dataclasses.field(default_factory=list)


async def check_unavailable(client: Client, pool: asyncpg.Pool, burst: Burst) -> Check:
    """Every course answered 503 has at most one run that generated (any other run was refused
    by admission, answered with a refusal or a 503 the client retried), its row names that run
    (or no run and no status) and is terminal."""
    await asyncio.sleep(2)  # visibility lags the runs by a second or two
    check = Check()
    for course in sorted(burst.unavailable):
        runs = await runs_of(client, course)
        generated = [run for run in runs if run.generated]
        row = await pool.fetchrow(
            "SELECT generation_status::text AS status, run_id FROM public.courses WHERE id = $1",
            uuid.UUID(course),
        )
        assert row is not None
        shown = [(run.run_id[:8], run.generation_status) for run in runs]
        if len(generated) > 1:
            check.problems.append(f"{course}: {len(generated)} runs generated {shown}")
            check.problems += [await story(client, course, run.run_id) for run in runs]
        elif row["status"] is not None and row["status"] not in TERMINAL:
            check.problems.append(f"{course}: left {row['status']} {shown}")
        elif row["run_id"] is not None and row["run_id"] not in {r.run_id for r in generated}:
            check.problems.append(f"{course}: row names run {row['run_id']}, runs {shown}")
        else:
            check.one_or_none += 1
            check.also_refused += len(runs) > len(generated)
    return check


async def workflow_pollers(client: Client, queue: str) -> int:
    """How many distinct workers poll the orchestration queue (a second worker is up)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    response = await client.workflow_service.describe_task_queue(request)
    return len({poller.identity for poller in response.pollers})


async def until_pollers(client: Client, queue: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while await workflow_pollers(client, queue) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} workers poll {queue}")
        await asyncio.sleep(0.5)


@dataclasses.dataclass
class Scenario:
    client: Client
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    queue: str
    cpu: processes.CpuMeter

    async def ours(self, clients: int, users: int, courses: int, label: str) -> Burst:
        jobs = await new_jobs(self.pool, users, courses)
        self.cpu.start()
        burst = await our_burst([self.http], self.pool, jobs, clients, label)
        burst.first_task_waits, burst.first_task_takes = await first_tasks(
            self.client, burst.admitted
        )
        print(f"  {burst.line()}\n  {burst.finish_line()}\n  {'':<34} {self.cpu.line()}")
        return burst

    async def bare(self, clients: int, count: int) -> Burst:
        self.cpu.start()
        burst = await bare_burst(self.client, bare.bare_queue(self.queue), count, clients)
        await asyncio.sleep(1)  # the baseline runs' close
        print(f"  {burst.line()}\n  {'':<34} {self.cpu.line()}", flush=True)
        return burst

    async def verify(self, burst: Burst) -> None:
        check = await check_unavailable(self.client, self.pool, burst)
        print(
            f"  {len(burst.unavailable)} course(s) answered 503 at least once: "
            f"{check.one_or_none} ended with exactly one generating run or none "
            f"({check.also_refused} of them also with a run refused by admission)"
            + "".join(f"\n    PROBLEM {line}" for line in check.problems),
            flush=True,
        )

    async def compare(self, clients: int, users: int, courses: int, workers: int) -> Burst:
        """Bare and ours, same clients and count, in `ROUNDS` rounds of alternating order
        (bare first, then ours first); print the pooled ratios against the targets."""
        count = users * courses * len(TIERS)
        label = f"gateway x{clients}, {workers} worker(s)"
        pooled: dict[str, Burst] = {}
        for number in range(ROUNDS):
            steps: list[tuple[str, Callable[[], Awaitable[Burst]]]] = [
                ("bare", lambda: self.bare(clients, count)),
                ("ours", lambda: self.ours(clients, users, courses, label)),
            ]
            for side, step in steps if number % 2 == 0 else steps[::-1]:
                burst = await step()
                pooled[side] = pooled[side].merged(burst) if side in pooled else burst
        await self.verify(pooled["ours"])
        if ROUNDS > 1:
            print(f"  pooled over {ROUNDS} rounds:\n  {pooled['bare'].line()}")
            print(f"  {pooled['ours'].line()}\n  {pooled['ours'].finish_line()}")
        print(ratios(pooled["ours"], pooled["bare"]), flush=True)
        return pooled["ours"]


def ratios(ours: Burst, baseline: Burst) -> str:
    rate, p95 = ours.rate / baseline.rate, ours.p(95) / baseline.p(95)
    met = rate >= RATE_TARGET and p95 <= P95_TARGET
    return (
        f"  start rate {rate:4.0%} of bare (target >= {RATE_TARGET:.0%}), start p95 "
        f"{p95:4.2f}x bare (target <= {P95_TARGET}x): {'MET' if met else 'NOT MET'}"
    )


async def warm_up(scenario: Scenario) -> None:
    """Both paths once (sandbox, caches, connections), finished before the measured bursts."""
    await bare_burst(scenario.client, bare.bare_queue(scenario.queue), 20, 4)
    jobs = await new_jobs(scenario.pool, 1, 1)
    await our_burst([scenario.http], scenario.pool, jobs, 4, "warm-up")


async def main() -> None:
    queue = f"bench-burst-{uuid.uuid4().hex[:8]}"
    total = USERS * COURSES * len(TIERS)
    async with local_stack("burst") as stack:
        env = await processes.stack_env(stack, queue)
        print(
            f"burst benchmark: {total} starts ({USERS} users per tier x {COURSES} courses, "
            f"stages {STAGE_SECONDS:g} s) from {CLIENTS} clients; gateway and workers as "
            f"processes, dev server (in-memory), {stack.pg.source} PostgreSQL, "
            f"{stack.redis_store.source} Redis",
            flush=True,
        )
        procs: list[subprocess.Popen[bytes]] = []
        with processes.stopped_at_exit(procs):
            procs += [processes.bare_worker_process(env), processes.worker_process(env)]
            http, api = await processes.gateway(env, CLIENTS)
            procs.append(api)
            address = stack.env.client.service_client.config.target_host
            pids = {"dev server": processes.dev_server_pid(address) or 0, "gateway": api.pid}
            pids |= {"bare worker": procs[0].pid, "worker": procs[1].pid}
            try:
                scenario = Scenario(
                    stack.env.client, stack.pool, http, queue, processes.CpuMeter(pids)
                )
                await warm_up(scenario)
                one = await scenario.compare(CLIENTS, USERS, COURSES, workers=1)
                if QUICK:
                    return
                await scenario.compare(20, USERS, COURSES, workers=1)
                await scenario.compare(1, 1, 2, workers=1)
                procs.append(processes.worker_process(env))
                pids["worker 2"] = procs[-1].pid
                await until_pollers(stack.env.client, queue, 2)
                two = await scenario.compare(CLIENTS, USERS, COURSES, workers=2)
                print(gain(one, two), flush=True)
            finally:
                await http.aclose()


def gain(one: Burst, two: Burst) -> str:
    return (
        f"  two workers vs one: start rate {two.rate / one.rate:4.2f}x, start p95 "
        f"{two.p(95) / one.p(95):4.2f}x, time to finish "
        f"{two.finished_seconds / one.finished_seconds:4.2f}x, 503s {len(one.unavailable)} -> "
        f"{len(two.unavailable)}"
    )


if __name__ == "__main__":
    asyncio.run(main())
