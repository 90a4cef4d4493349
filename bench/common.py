"""Small helpers the benchmarks share: timing samples and printing one comparable line each."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shlex
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis
from temporalio.testing import WorkflowEnvironment

import embedded
import heap
from admission import create_redis
from db.migrate import migrate
from db.pool import create_pool
from workflows import search_attributes


def percentile(samples: list[float], q: float) -> float:
    """The `q`-th percentile (0–100) by nearest rank; `samples` need not be sorted."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def freeze_heap_as_a_worker_does() -> None:
    """What `python -m worker` does before its workers poll (`heap`, `WORKER_GC_FREEZE`): the
    benchmarks that host the workers in their own process do it once the workers are built,
    before they start any run."""
    from tests.factories import make_settings

    if make_settings().worker.gc_freeze:
        heap.freeze_start_up_heap()


@dataclass(frozen=True)
class Stats:
    label: str
    count: int
    seconds: float
    p50_ms: float
    p95_ms: float

    @classmethod
    def of(cls, label: str, samples_ms: list[float], seconds: float) -> Stats:
        """Summarise latency samples taken over `seconds` of wall time."""
        p50, p95 = percentile(samples_ms, 50), percentile(samples_ms, 95)
        return cls(label, len(samples_ms), seconds, p50, p95)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"{self.label:<40} n={self.count:<6} p50={self.p50_ms:8.2f} ms "
            f"p95={self.p95_ms:8.2f} ms  {self.rate:10.1f}/s"
        )


async def measure(label: str, call: Callable[[], Awaitable[object]], count: int) -> Stats:
    """Await `call()` `count` times in a row and summarise the latencies."""
    latencies: list[float] = []
    began = time.perf_counter()
    for _ in range(count):
        start = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - start) * 1000)
    return Stats.of(label, latencies, time.perf_counter() - began)


def ratio_line(name: str, value: float, baseline: float, target: str) -> str:
    """One line comparing a measurement with its baseline, e.g. `1.32x (target <= 1.5x)`."""
    ratio = value / baseline if baseline else math.inf
    return f"{name:<40} {ratio:6.2f}x of baseline (target {target})"


async def settle(pool: asyncpg.Pool, timeout: float = 120, interval: float = 0.1) -> float:
    """Wait until no course is `pending` or `initializing` (every started run is past admission
    and its claim, waiting for or running its stage), then for the last runs' stage
    scheduling; the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        busy = await pool.fetchval(
            "SELECT count(*) FROM public.courses"
            " WHERE generation_status IN ('pending', 'initializing')"
        )
        if not busy:
            break
        await asyncio.sleep(interval)
    await asyncio.sleep(0.5)
    return time.monotonic() - began


class RawHttp:
    """A bare HTTP/1.1 client on keep-alive connections to one host, for load generators.

    httpx spends about 3 ms of CPU on each request on this machine, as much as the gateway's own
    work; on 2 shared cores a benchmark would measure its own client. This one writes the
    request line and headers and reads a `Content-Length` body: about 0.1 ms."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        """The response's status and body. A kept connection the server has closed meanwhile
        (uvicorn closes idle ones after 5 s) is replaced, and the request sent again: the
        server never saw it."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        while self._idle:
            reader, writer = self._idle.pop()
            try:
                return await self._exchange(reader, writer, message)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                writer.close()
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return await self._exchange(reader, writer, message)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes
    ) -> tuple[int, bytes]:
        writer.write(message)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        content = await reader.readexactly(length)
        self._idle.append((reader, writer))
        return int(head[9:12]), content

    async def aclose(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


@dataclass(frozen=True)
class Stack:
    pg: embedded.Store
    redis_store: embedded.Store
    env: WorkflowEnvironment
    url: str  # the benchmark's own migrated database
    pool: asyncpg.Pool
    redis: aioredis.Redis


@contextlib.asynccontextmanager
async def local_stack(name: str) -> AsyncIterator[Stack]:
    """PostgreSQL and Redis as `make run` finds them, a fresh dev server from the wheel, and a
    throwaway migrated database `cg_bench_<name>_<hex>` with a pool and a Redis client; all
    closed, dropped and stopped on exit. `BENCH_DEV_SERVER_ARGS` adds arguments to the dev
    server (e.g. `--dynamic-config-value history.transferProcessorMaxPollRPS=1000`)."""
    data = Path(".data")
    pg = await embedded.resolve_postgres(os.environ.get("DATABASE_URL"), data / "pg")
    redis_store = await embedded.resolve_redis(os.environ.get("REDIS_URL"), data / "redis")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(embedded.venv_binary("temporal")),
        search_attributes=list(search_attributes.ALL),
        ui=False,
        dev_server_log_level="error",
        dev_server_extra_args=shlex.split(os.environ.get("BENCH_DEV_SERVER_ARGS", "")),
    )
    database = f"cg_bench_{name}_{uuid.uuid4().hex[:8]}"
    try:
        await embedded.ensure_database(pg.url, database)
        url = embedded.with_database(pg.url, database)
        await migrate(url)
        pool = await create_pool(url, min_size=2, max_size=10)
        redis = create_redis(redis_store.url)
        try:
            yield Stack(pg, redis_store, env, url, pool, redis)
        finally:
            await redis.aclose()
            await pool.close()
    finally:
        await env.shutdown()
        await embedded.drop_database(pg.url, database)
        pg.stop()
        redis_store.stop()
