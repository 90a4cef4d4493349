"""The invariants every fault must leave intact, checked from outside the system.

- every admitted run completed, or ended failed/cancelled with a message on its course;
- the course row's status agrees with what Temporal says of its recorded run;
- no lease whose run is not open; no open run (of an admitted course) without its lease;
- never more leases for a user than its tier allows: `LeaseSampler` reads the lease sets every
  ~100 ms for the whole scenario and keeps every moment that broke it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as aioredis
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from admission import LeaseKeys, Leases
from settings import AdmissionSettings
from tests.faults.workload import Planned
from tiers import parse_tier

RUNNING = WorkflowExecutionStatus.RUNNING
# The Temporal statuses a course's final status may stand beside.
AGREES = {
    "completed": {WorkflowExecutionStatus.COMPLETED},
    "cancelled": {WorkflowExecutionStatus.CANCELED},
    "failed": {
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.TIMED_OUT,
    },
}
TERMINAL = frozenset(AGREES)


@dataclass
class LeaseSampler:
    """Reads every watched user's lease set every `interval` seconds; records over-limit
    moments. Redis being down is a gap in the samples, not a violation."""

    redis: aioredis.Redis
    keys: LeaseKeys
    limits: dict[str, int] = field(default_factory=dict)  # user id -> tier limit
    interval: float = 0.1
    samples: int = 0
    gaps: int = 0
    violations: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def watch(self, planned: Iterable[Planned], admission: AdmissionSettings) -> None:
        for p in planned:
            self.limits[p.user_id] = admission.policy(parse_tier(p.tier)[0]).limit

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.interval)

    async def sample(self) -> None:
        users = list(self.limits)
        if not users:
            return
        now = time.time()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.zcount(self.keys.user(user), f"({now}", "+inf")
                counts = await pipe.execute()
        except (OSError, aioredis.RedisError):
            self.gaps += 1
            return
        self.samples += 1
        for user, count in zip(users, counts, strict=True):
            if int(count) > self.limits[user]:
                self.violations.append(f"{time.strftime('%X')} user {user}: {count} leases")


@dataclass(frozen=True)
class World:
    """Where the checks read: PostgreSQL, Temporal and the lease store."""

    pool: asyncpg.Pool
    client: Client
    leases: Leases


async def describe(client: Client, workflow_id: str, run_id: str) -> WorkflowExecutionStatus | None:
    """The run's status by its run id (consistent, unlike visibility); None if unknown."""
    try:
        described = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise AssertionError(f"describe {workflow_id} failed: {exc}") from exc
    return described.status


async def pending_activities(client: Client, workflow_id: str, run_id: str) -> str:
    """What an open run waits for, for failure messages: activity, state, attempt, failure."""
    try:
        described = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    except RPCError as exc:
        return f"describe failed: {exc}"
    return (
        "; ".join(
            f"{a.activity_type.name} state={a.state} attempt={a.attempt}"
            f" failure={a.last_failure.message[:120]!r}"
            for a in described.raw_description.pending_activities
        )
        or "no pending activity"
    )


async def course_problems(world: World, course: asyncpg.Record) -> list[str]:
    """What is wrong with one admitted course and its recorded run."""
    cid, status = course["id"], course["generation_status"]
    if course["run_id"] is None:
        return [f"{cid}: admitted but no run recorded (status {status})"]
    run = await describe(world.client, course["workflow_id"], course["run_id"])
    if status not in TERMINAL:
        pending = await pending_activities(world.client, course["workflow_id"], course["run_id"])
        return [f"{cid}: still {status} (run {run.name if run else 'unknown'}; {pending})"]
    problems = []
    if status != "completed" and not course["error_message"]:
        problems.append(f"{cid}: {status} without a message")
    if run == RUNNING:
        problems.append(f"{cid}: row {status} while its run is still open")
    elif run not in AGREES[status]:
        problems.append(f"{cid}: row {status} but Temporal says {run.name if run else None}")
    return problems


async def lease_problems(world: World, open_courses: set[str]) -> list[str]:
    """Leases whose run is not open; admitted courses whose open run has no lease."""
    problems = []
    holders = await world.leases.holders()
    held = {lease.holder for lease in holders}
    for lease in holders:
        run = await describe(world.client, lease.holder, lease.run_id)
        if run != RUNNING:
            problems.append(f"lease {lease.holder} held for a run that is {run}")
    problems += [f"open run of {wf} has no lease" for wf in open_courses - held]
    return problems


async def check(world: World, planned: Sequence[Planned], sampler: LeaseSampler) -> list[str]:
    """Every broken invariant, as one line each (empty: all hold)."""
    rows = await world.pool.fetch(
        "SELECT id, generation_status::text, error_message, workflow_id, run_id"
        " FROM public.courses WHERE id = ANY($1::uuid[])",
        [uuid.UUID(p.course_id) for p in planned],
    )
    problems: list[str] = []
    open_runs: set[str] = set()
    for row in rows:
        problems += await course_problems(world, row)
        active = row["run_id"] and row["generation_status"] not in TERMINAL
        if active and await describe(world.client, row["workflow_id"], row["run_id"]) == RUNNING:
            open_runs.add(row["workflow_id"])
    problems += await lease_problems(world, open_runs)
    return problems + [f"over the tier limit at {v}" for v in sampler.violations]


async def repairs_since(pool: asyncpg.Pool, since: float) -> list[dict[str, object]]:
    """The reconciler's `orphaned_job_recovery` records written after `since` (epoch s)."""
    rows = await pool.fetch(
        "SELECT course_id, metadata FROM public.system_metrics"
        " WHERE event_type = 'orphaned_job_recovery' AND timestamp >= to_timestamp($1)",
        since,
    )
    return [{"course_id": str(r["course_id"]), "metadata": r["metadata"]} for r in rows]
