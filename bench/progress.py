"""`python -m bench.progress`: the progress function against a plain UPDATE.

Measures `update_course_progress` (a real change every call: new message, merged metadata,
seq bump, notification) next to a plain UPDATE of the same row and columns, which fires the
same triggers, at 1 client and at 4 clients (one course row per client), in alternating rounds
on a throwaway database. Target: p95 ≤ 5 ms and ≤ 2× the UPDATE at 1 client.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

import embedded
from bench.common import Stats, ratio_line
from db.migrate import migrate
from db.pool import create_pool
from tests.factories import insert_course, new_id

ROUNDS = 10
CALLS_PER_ROUND = 150  # per client
WARMUP = 100
P95_TARGET_MS = 5.0
RATIO_TARGET = 2.0

# The writes that bring a claimed course to step 3 in progress.
TO_STEP_THREE = [(step, status) for step in (1, 2) for status in ("in_progress", "completed")]
TO_STEP_THREE.append((3, "in_progress"))
PROGRESS = "SELECT public.update_course_progress($1, 3, 'in_progress', $2, NULL, NULL, $3)"
PLAIN_UPDATE = """
UPDATE public.courses
   SET generation_progress = jsonb_set(generation_progress, '{message}', to_jsonb($2::text)),
       generation_status = generation_status, error_message = error_message,
       error_details = error_details,
       generation_started_at = coalesce(generation_started_at, now()),
       generation_completed_at = generation_completed_at, last_progress_update = now(),
       progress_seq = progress_seq + 1
 WHERE id = $1"""


@dataclass
class Target:
    """One client's course row and the run that owns it."""

    course_id: uuid.UUID
    run_id: str
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def message(self, side: str) -> str:
        return f"{side} {next(self.counter)}"


Conn = asyncpg.Connection | PoolConnectionProxy
Call = Callable[[Conn, Target], Awaitable[object]]


async def progress_call(conn: Conn, target: Target) -> object:
    meta = {"run_id": target.run_id, "attempt": 1}
    return await conn.fetchval(PROGRESS, target.course_id, target.message("f"), meta)


async def update_call(conn: Conn, target: Target) -> object:
    return await conn.execute(PLAIN_UPDATE, target.course_id, target.message("u"))


async def prepare_targets(pool: asyncpg.Pool, count: int) -> list[Target]:
    """Courses claimed by a run and driven to step 3 in progress, as in a real generation."""
    targets = []
    for _ in range(count):
        course, run = uuid.UUID(await insert_course(pool)), new_id()
        await pool.fetchval(
            "SELECT public.begin_course_generation($1, 'wf', $2, 'STRUCTURE_ANALYSIS', now())",
            course,
            run,
        )
        for step, status in TO_STEP_THREE:
            await pool.fetchval(
                "SELECT public.update_course_progress($1, $2, $3, 'm', NULL, NULL, $4)",
                course,
                step,
                status,
                {"run_id": run},
            )
        targets.append(Target(course, run))
    return targets


async def client(pool: asyncpg.Pool, call: Call, target: Target, count: int) -> list[float]:
    latencies = []
    async with pool.acquire() as conn:
        for _ in range(count):
            start = time.perf_counter()
            await call(conn, target)
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies


async def round_of(
    pool: asyncpg.Pool, call: Call, targets: list[Target], count: int
) -> list[float]:
    """`count` calls per client, all clients at once; every call's latency in ms."""
    results = await asyncio.gather(*(client(pool, call, t, count) for t in targets))
    return [latency for latencies in results for latency in latencies]


async def compare(pool: asyncpg.Pool, targets: list[Target]) -> tuple[Stats, Stats]:
    """Alternating rounds of both sides so drift on a shared machine hits them alike."""
    samples: dict[str, list[float]] = {"function": [], "update": []}
    seconds = dict.fromkeys(samples, 0.0)
    calls = {"function": progress_call, "update": update_call}
    for call in calls.values():
        await round_of(pool, call, targets, WARMUP)
    for number in range(ROUNDS):
        order = list(calls) if number % 2 == 0 else list(reversed(calls))
        for side in order:
            began = time.perf_counter()
            samples[side] += await round_of(pool, calls[side], targets, CALLS_PER_ROUND)
            seconds[side] += time.perf_counter() - began
    clients = len(targets)
    return (
        Stats.of(
            f"update_course_progress x{clients} clients", samples["function"], seconds["function"]
        ),
        Stats.of(f"plain UPDATE (same row/cols) x{clients}", samples["update"], seconds["update"]),
    )


def report(function: Stats, update: Stats, verdict: bool) -> None:
    print(function.line())
    print(update.line())
    print(ratio_line("  p50 ratio (function / UPDATE)", function.p50_ms, update.p50_ms, "info"))
    target = f"<= {RATIO_TARGET:g}x" if verdict else "reported"
    print(ratio_line("  p95 ratio (function / UPDATE)", function.p95_ms, update.p95_ms, target))
    if verdict:
        ok = function.p95_ms <= P95_TARGET_MS and function.p95_ms <= RATIO_TARGET * update.p95_ms
        print(
            f"  target p95 <= {P95_TARGET_MS:g} ms and <= {RATIO_TARGET:g}x UPDATE: "
            f"{'MET' if ok else 'NOT MET'}"
        )


async def run(url: str) -> None:
    pool = await create_pool(url, min_size=4, max_size=4)
    try:
        targets = await prepare_targets(pool, 4)
        for clients in (1, 4):
            function, update = await compare(pool, targets[:clients])
            report(function, update, verdict=clients == 1)
    finally:
        await pool.close()


async def main() -> None:
    store = await embedded.resolve_postgres(os.environ.get("DATABASE_URL"), Path(".data/pg"))
    name = f"cg_bench_progress_{uuid.uuid4().hex[:8]}"
    try:
        await embedded.ensure_database(store.url, name)
        url = embedded.with_database(store.url, name)
        await migrate(url)
        print(f"progress function benchmark on {store.source} PostgreSQL, database {name}")
        await run(url)
    finally:
        await embedded.drop_database(store.url, name)
        store.stop()


if __name__ == "__main__":
    asyncio.run(main())
