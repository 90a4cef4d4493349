"""`python -m bench.sse`: progress write → Server-Sent Event delivery with 200 subscribers.

The API runs as its own process (`python -m api`, uvicorn) against PostgreSQL; this process
holds 200 open event streams, one per course, and writes progress changes of those courses
through `update_course_progress`. Each sample is the time from issuing the write to the event
arriving at its stream's client. Measured one write at a time, and in bursts of concurrent
writes to different courses. As a floor, the same writes are also timed to a plain asyncpg
LISTEN in this process (the notification alone, no row read, no HTTP).

Target: p95 ≤ 100 ms with 200 subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

import embedded
from bench.common import Stats, local_stack
from bench.processes import api_process
from db.repository import CourseRepository
from tests import factories
from tests.api.sse_support import events_path, read_events

SUBSCRIBERS = int(os.environ.get("BENCH_SSE_SUBSCRIBERS", "200"))
ROUNDS = int(os.environ.get("BENCH_SSE_ROUNDS", "3"))  # writes per course, per pattern
BURST = int(os.environ.get("BENCH_SSE_BURST", "20"))
TARGET_MS = 100.0
Key = tuple[str, int]  # course id, seq


@dataclass
class Arrivals:
    """When each (course, seq) reached a sink; a write awaits its own."""

    seen: dict[Key, float] = field(default_factory=dict)
    waiting: dict[Key, asyncio.Future[float]] = field(default_factory=dict)

    def mark(self, key: Key) -> None:
        now = time.perf_counter()
        self.seen[key] = now
        waiter = self.waiting.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    def expect(self, key: Key) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if key in self.seen:
            future.set_result(self.seen[key])
        else:
            self.waiting[key] = future
        return future


@dataclass
class Course:
    course_id: str
    user_id: str
    run_id: str
    seq: int = 1  # the claim's


@dataclass
class Samples:
    sse: list[float] = field(default_factory=list)
    notify: list[float] = field(default_factory=list)


class Bench:
    def __init__(self, pool: asyncpg.Pool, http: httpx.AsyncClient) -> None:
        self.pool, self.http = pool, http
        self.repo = CourseRepository(pool)
        self.streams, self.notes = Arrivals(), Arrivals()
        self.opened: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def course(self) -> Course:
        user = await factories.insert_user(self.pool)
        course, run = await factories.insert_course(self.pool, user), factories.new_id()
        await self.repo.begin_generation(
            course, "wf", run, "STRUCTURE_ANALYSIS", factories.run_start()
        )
        return Course(course, user, run)

    async def follow(self, course: Course) -> None:
        headers = factories.bearer(factories.hs_token(course.user_id))
        path = events_path(course.course_id)
        async with self.http.stream("GET", path, headers=headers) as response:
            async for event in read_events(response):
                self.streams.mark((course.course_id, event.seq))
                self.opened[course.course_id].set()

    def notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        message = json.loads(str(payload))
        self.notes.mark((str(message["courseId"]), int(message["seq"])))

    async def write(self, course: Course, samples: Samples) -> None:
        course.seq += 1
        key = (course.course_id, course.seq)
        streamed, noted = self.streams.expect(key), self.notes.expect(key)
        began = time.perf_counter()
        meta = {"run_id": course.run_id}
        await self.repo.update_progress(
            course.course_id, 1, "in_progress", f"bench {course.seq}", metadata=meta
        )
        samples.sse.append((await asyncio.wait_for(streamed, 10) - began) * 1000)
        samples.notify.append((await asyncio.wait_for(noted, 10) - began) * 1000)

    async def one_at_a_time(self, courses: list[Course]) -> tuple[Samples, float]:
        samples, began = Samples(), time.perf_counter()
        for _ in range(ROUNDS):
            for course in courses:
                await self.write(course, samples)
        return samples, time.perf_counter() - began

    async def bursts(self, courses: list[Course]) -> tuple[Samples, float]:
        samples, began = Samples(), time.perf_counter()
        for _ in range(ROUNDS):
            for start in range(0, len(courses), BURST):
                group = courses[start : start + BURST]
                await asyncio.gather(*(self.write(course, samples) for course in group))
        return samples, time.perf_counter() - began


@contextlib.asynccontextmanager
async def listening(url: str, bench: Bench) -> AsyncIterator[None]:
    conn = await asyncpg.connect(url)
    await conn.add_listener("course_progress", bench.notified)
    try:
        yield
    finally:
        await conn.close()


async def wait_alive(http: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get("/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("the API did not answer within 60 s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report(label: str, samples: Samples, seconds: float) -> None:
    sse = Stats.of(f"{label}: write -> SSE client", samples.sse, seconds)
    floor = Stats.of(f"{label}: write -> NOTIFY (floor)", samples.notify, seconds)
    verdict = "MET" if sse.p95_ms <= TARGET_MS else "NOT MET"
    print(sse.line(), flush=True)
    print(floor.line(), flush=True)
    print(f"  p95 {sse.p95_ms:.1f} ms (target <= {TARGET_MS:g} ms): {verdict}", flush=True)


async def main() -> None:
    async with local_stack("sse") as stack:
        port = embedded.free_port()
        env = {
            "DATABASE_URL": stack.url,
            "REDIS_URL": stack.redis_store.url,
            "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
            "SUPABASE_JWT_SECRET": factories.JWT_SECRET,
            "ENVIRONMENT": "development",
            "LOG_LEVEL": "warning",
        }
        limits = httpx.Limits(max_connections=SUBSCRIBERS + 10)
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60)
        proc = api_process(env, port)
        bench = Bench(stack.pool, http)
        streams: list[asyncio.Task[None]] = []
        try:
            await wait_alive(http)
            courses = [await bench.course() for _ in range(SUBSCRIBERS)]
            streams = [asyncio.create_task(bench.follow(course)) for course in courses]
            await asyncio.wait_for(
                asyncio.gather(*(bench.opened[c.course_id].wait() for c in courses)), 60
            )
            print(
                f"sse benchmark: {SUBSCRIBERS} open streams (API process RSS "
                f"{rss_mib(proc.pid):.0f} MiB), {ROUNDS} writes per course per pattern, "
                f"bursts of {BURST}; {stack.pg.source} PostgreSQL",
                flush=True,
            )
            async with listening(stack.url, bench):
                report("one at a time", *await bench.one_at_a_time(courses))
                report(f"bursts of {BURST}", *await bench.bursts(courses))
            print(f"API process RSS after the rounds: {rss_mib(proc.pid):.0f} MiB", flush=True)
        finally:
            for stream in streams:
                stream.cancel()
            await asyncio.gather(*streams, return_exceptions=True)
            await http.aclose()
            embedded.stop_process(proc)


if __name__ == "__main__":
    asyncio.run(main())
