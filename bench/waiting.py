"""`python -m bench waiting`: thousands of admitted runs waiting for stage capacity.

The gateway (`python -m api`) and one worker (`python -m worker`) run as processes against a
fresh dev server, with `STAGE_CAPACITY=2` and 3600 s simulated stages: two runs hold a stage
slot, every other admitted run waits in the stage queue's backlog. PREMIUM users
(`BENCH_WAITING_PER_USER` runs each, default 5; `TIER_LIMIT_PREMIUM` and `ADMISSION_GLOBAL_CAP`
set so no limit refuses) start `BENCH_WAITING_COUNT` runs (default 10,000) through the gateway
from `BENCH_WAITING_CLIENTS` clients (default 20), or as many as are admitted within
`BENCH_WAITING_SECONDS` (default 600).

With none waiting, at 1,000 and at the final count it measures (after the admitted runs have
settled into the backlog) the gateway's start p95 (fresh courses) and status p95 (reads of
waiting courses), each from the same clients, and the worker process's RSS (`VmRSS`); a bare
`describe()` of the same runs right after the status reads says how loaded the machine was
at that moment (status p95 / describe p95 compares milestones on a shared machine), and a
bare update-with-start (`bench.bare`, its worker a process of its own) right after our starts
says how the server's own start latency moved with the runs it holds. The
target: start and status p95 within 1.5x of their none-waiting values, and the worker's memory
bounded. Then it cancels every run with one batch (`temporal workflow cancel --query`) and waits
for them to close. Requests go out through `bench.common.RawHttp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import random
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg

import embedded
from bench import bare, processes
from bench.common import RawHttp, Stack, local_stack, percentile, settle
from tests import factories
from workflows.types import workflow_id_for

COUNT = int(os.environ.get("BENCH_WAITING_COUNT", "10000"))
SECONDS = float(os.environ.get("BENCH_WAITING_SECONDS", "600"))
CLIENTS = int(os.environ.get("BENCH_WAITING_CLIENTS", "20"))
PROBE = int(os.environ.get("BENCH_WAITING_PROBE", "200"))  # requests per probe and side
CLOSE_SECONDS = float(os.environ.get("BENCH_WAITING_CLOSE_SECONDS", "900"))
MILESTONE = 1000
# Runs per user: PREMIUM's default limit. Each admission answer lists the user's leases, so
# a user with 100 (the limit raised to match) made every answer carry 100 holders.
RUNS_PER_USER = int(os.environ.get("BENCH_WAITING_PER_USER", "5"))
RUNNING = 'WorkflowType = "CourseGenerationWorkflow" AND ExecutionStatus = "Running"'


@dataclasses.dataclass(frozen=True)
class Course:
    course_id: str
    token: str

    @property
    def path(self) -> str:
        return f"/api/v1/courses/{self.course_id}/generation"


@dataclasses.dataclass(frozen=True)
class Probe:
    waiting: int
    start_p95: float
    status_p95: float
    describe_p95: float  # a bare describe() of the same runs, right after: the machine's state
    bare_start_p95: float  # a bare update-with-start, right after ours: the server's state
    worker_rss_mb: float


@dataclasses.dataclass
class Run:
    stack: Stack
    http: RawHttp
    worker: subprocess.Popen[bytes]
    api: subprocess.Popen[bytes]
    bare_queue: str
    courses: list[Course]
    admitted: list[Course] = dataclasses.field(default_factory=list)
    answers: dict[int, int] = dataclasses.field(default_factory=dict)

    def fresh(self, count: int) -> list[Course]:
        """The next `count` courses nobody has started yet."""
        begin = len(self.admitted)
        return self.courses[begin : begin + count]

    async def start(self, course: Course) -> None:
        """Start `course` until the gateway answers (a 503 may have started it: the retry
        attaches with 200)."""
        while True:
            status, body = await self.http.request(
                "POST", course.path, factories.bearer(course.token)
            )
            self.answers[status] = self.answers.get(status, 0) + 1
            if status in (200, 202):
                self.admitted.append(course)
                return
            if status != 503:
                raise RuntimeError(f"start answered {status}: {body[:300]!r}")
            await asyncio.sleep(1)

    async def bare_start(self, _: Course) -> None:
        """The baseline of a start: a bare update-with-start on the same server (its run
        ends at once, so it adds no waiting run)."""
        await bare.bare_start(self.stack.env.client, self.bare_queue)

    async def describe(self, course: Course) -> None:
        """The baseline of a status read: a bare `describe()` from this process."""
        client = self.stack.env.client
        await client.get_workflow_handle(workflow_id_for(course.course_id)).describe()

    async def read(self, course: Course) -> None:
        status, body = await self.http.request("GET", course.path, factories.bearer(course.token))
        if status != 200:
            raise RuntimeError(f"status answered {status}: {body[:300]!r}")


async def clients(items: list[Course], call: Callable[[Course], Awaitable[None]]) -> list[float]:
    """`CLIENTS` clients working through `items` in order; the latency of each call in ms."""
    queue = iter(items)
    samples: list[float] = []

    async def client() -> None:
        for item in queue:
            began = time.perf_counter()
            await call(item)
            samples.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return samples


def rss_mb(pid: int) -> float:
    """The process's resident set (`VmRSS` of /proc/<pid>/status) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def insert_courses(pool: asyncpg.Pool, count: int) -> list[Course]:
    """`count` courses of PREMIUM users, `RUNS_PER_USER` each, in three statements."""
    users = [uuid.uuid4() for _ in range(math.ceil(count / RUNS_PER_USER))]
    owners = [users[i % len(users)] for i in range(count)]
    ids = [uuid.uuid4() for _ in range(count)]
    await pool.execute("INSERT INTO auth.users (id) SELECT unnest($1::uuid[])", users)
    await pool.execute(
        "INSERT INTO public.user_profiles (id, tier, role)"
        " SELECT unnest($1::uuid[]), 'premium', 'user'",
        users,
    )
    await pool.execute(
        "INSERT INTO public.courses (id, user_id, title)"
        " SELECT unnest($1::uuid[]), unnest($2::uuid[]), 'waiting bench'",
        ids,
        owners,
    )
    tokens = {user: factories.hs_token(str(user)) for user in users}
    return [Course(str(i), tokens[o]) for i, o in zip(ids, owners, strict=True)]


async def probe(run: Run) -> Probe:
    """Start p95 of `PROBE` fresh courses, then status p95 of `PROBE` reads of waiting ones."""
    waiting = len(run.admitted)
    worker_rss = rss_mb(run.worker.pid)
    fresh = run.fresh(PROBE)
    starts = await clients(fresh, run.start)
    bare_starts = await clients(fresh, run.bare_start)
    await settle(run.stack.pool, 600, 0.5)
    sample = random.sample(run.admitted, min(PROBE, len(run.admitted)))
    sample = (sample * math.ceil(PROBE / len(sample)))[:PROBE]
    reads = await clients(sample, run.read)
    describes = await clients(sample, run.describe)
    result = Probe(
        waiting,
        percentile(starts, 95),
        percentile(reads, 95),
        percentile(describes, 95),
        percentile(bare_starts, 95),
        worker_rss,
    )
    print(
        f"  {waiting:>6} waiting: start p50 {percentile(starts, 50):7.1f} ms p95 "
        f"{result.start_p95:7.1f} ms (bare {result.bare_start_p95:7.1f} ms) | status p50 "
        f"{percentile(reads, 50):7.1f} ms p95 "
        f"{result.status_p95:7.1f} ms | bare describe p95 {result.describe_p95:6.1f} ms | "
        f"worker RSS {worker_rss:6.1f} MiB",
        flush=True,
    )
    return result


async def admit_until(run: Run, target: int, deadline: float) -> None:
    """Start fresh courses until `target` runs are admitted or `deadline` (monotonic) passes,
    printing the rate and the processes' memory every 500."""
    marks = [len(run.admitted), time.monotonic()]

    async def start(course: Course) -> None:
        if time.monotonic() >= deadline:
            return
        await run.start(course)
        if len(run.admitted) - marks[0] >= 500:
            now = time.monotonic()
            rate = (len(run.admitted) - marks[0]) / (now - marks[1])
            marks[:] = [len(run.admitted), now]
            print(f"    {len(run.admitted):>6} admitted, {rate:5.1f}/s, {memory(run)}", flush=True)

    pids = {"gateway": run.api.pid, "worker": run.worker.pid, "bench": os.getpid()}
    server = processes.dev_server_pid(run.stack.env.client.service_client.config.target_host)
    pids.update({"dev server": server} if server else {})
    used, began = {name: processes.cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic()
    await clients(run.fresh(target - len(run.admitted)), start)
    wall = time.monotonic() - began
    shares = ", ".join(
        f"{n} {(processes.cpu_seconds(p) - used[n]) / wall:.0%}" for n, p in pids.items()
    )
    print(f"    CPU while admitting (of one core): {shares}", flush=True)


def memory(run: Run) -> str:
    server = processes.dev_server_pid(run.stack.env.client.service_client.config.target_host)
    shown = f"worker {rss_mb(run.worker.pid):.0f} MiB, gateway {rss_mb(run.api.pid):.0f} MiB"
    return shown + (f", dev server {rss_mb(server):.0f} MiB" if server else "")


async def cancel_all(stack: Stack) -> tuple[int, float]:
    """One batch cancel of every open run, then wait for them to close; (still open, seconds)."""
    client, began = stack.env.client, time.monotonic()
    address = client.service_client.config.target_host
    command = [str(embedded.venv_binary("temporal")), "workflow", "cancel", "--query", RUNNING]
    command += ["--address", address, "--namespace", client.namespace, "--yes", "--rps", "500"]
    batch = await asyncio.create_subprocess_exec(*command, stdout=subprocess.DEVNULL)
    if await batch.wait() != 0:
        raise RuntimeError(f"the batch cancel exited with {batch.returncode}")
    still = -1
    while time.monotonic() - began < CLOSE_SECONDS:
        still = (await client.count_workflows(RUNNING)).count
        if still == 0:
            break
        await asyncio.sleep(2)
    return still, time.monotonic() - began


async def ready(http: RawHttp, api: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and api.poll() is None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            if (await http.request("GET", "/readyz", {}))[0] == 200:
                return
        await asyncio.sleep(0.3)
    raise RuntimeError("the gateway did not become ready within 60 s")


async def environment(stack: Stack, port: int) -> dict[str, str]:
    return await processes.stack_env(
        stack,
        f"bench-wait-{uuid.uuid4().hex[:8]}",
        API_PORT=str(port),
        STAGE_CAPACITY="2",
        SIMULATED_STAGE_SECONDS="3600",
        TIER_LIMIT_PREMIUM=str(RUNS_PER_USER),
        ADMISSION_GLOBAL_CAP=str(COUNT + 10 * PROBE),
        LOG_LEVEL="warning",
    )


@contextlib.asynccontextmanager
async def running(stack: Stack) -> AsyncIterator[Run]:
    port = embedded.free_port()
    env = await environment(stack, port)
    worker, api = processes.worker_process(env), processes.api_process(env, port)
    baseline = processes.bare_worker_process(env)
    http = RawHttp("127.0.0.1", port)
    try:
        await ready(http, api)
        courses = await insert_courses(stack.pool, COUNT + 3 * PROBE)
        queue = bare.bare_queue(env["TEMPORAL_TASK_QUEUE"])
        yield Run(stack, http, worker, api, queue, courses)
    finally:
        await http.aclose()
        for proc in (api, worker, baseline):
            embedded.stop_process(proc, timeout=30)


def report(probes: list[Probe], admitting: float, answers: dict[int, int]) -> None:
    base = probes[0]
    print(f"  answers to starts: {dict(sorted(answers.items()))}")
    print(f"  admitting took {admitting:.0f} s; worker RSS by waiting runs: ", end="")
    print(", ".join(f"{p.waiting}: {p.worker_rss_mb:.0f} MiB" for p in probes))
    for p in probes[1:]:
        start, status = p.start_p95 / base.start_p95, p.status_p95 / base.status_p95
        met = "MET" if max(start, status) <= 1.5 else "NOT MET"
        print(
            f"  at {p.waiting} waiting: start p95 {start:.2f}x, status p95 {status:.2f}x of none "
            f"waiting (target <= 1.5x): {met}; status p95 / bare describe p95 "
            f"{p.status_p95 / p.describe_p95:.2f}x (none waiting: "
            f"{base.status_p95 / base.describe_p95:.2f}x); start p95 / bare start p95 "
            f"{p.start_p95 / p.bare_start_p95:.2f}x (none waiting: "
            f"{base.start_p95 / base.bare_start_p95:.2f}x)",
            flush=True,
        )


async def main() -> None:
    async with local_stack("waiting") as stack, running(stack) as run:
        print(
            f"waiting benchmark: {COUNT} runs (or {SECONDS:.0f} s of admitting) from {CLIENTS} "
            f"clients, STAGE_CAPACITY=2, probes of {PROBE} starts and {PROBE} status reads",
            flush=True,
        )
        probes = [await probe(run)]
        deadline, admitting = time.monotonic() + SECONDS, 0.0
        for target in ([MILESTONE] if COUNT > MILESTONE else []) + [COUNT]:
            began = time.monotonic()
            await admit_until(run, target, deadline)
            admitting += time.monotonic() - began
            print(f"    settled in {await settle(stack.pool, 600, 0.5):.0f} s", flush=True)
            probes.append(await probe(run))
        report(probes, admitting, run.answers)
        still, seconds = await cancel_all(stack)
        print(f"  batch cancel: {len(run.admitted)} runs, {still} still open after {seconds:.0f} s")
