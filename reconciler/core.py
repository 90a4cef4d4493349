"""One reconcile pass: make PostgreSQL and Redis agree with Temporal, a page at a time.

The pass is `begin`, then every page of active courses, then every page of leases, then
`finish`; `ReconcileWorkflow` calls each as an activity and `python -m reconciler once` calls
them in-process. Every repair is idempotent (a second pass right after finds nothing to do),
is counted in `coursegen_reconciler_repairs_total{kind}` and logged as one line.

Courses (keyset pages of active rows, each page checked against one visibility query and one
read of its leases):
- the recorded run is not open (its describe says closed, or it does not exist) and the row
  has been idle for `RECONCILE_GRACE_SECONDS` → `failed` with a message naming what happened,
  its lease released, one `orphaned_job_recovery` listing the repairs and the run's status;
- the recorded run is open but its lease is missing (Redis lost it) → restored with the run's
  remaining time (start + execution timeout) as its expiry, and taken back at once if the row
  has meanwhile ended (the run wrote its end and freed its lease while the pass looked);
- the run's started stage has shown the same heartbeat details for `STUCK_AFTER_SECONDS` →
  one `worker_timeout` (warn) per run; a stage still waiting in a backlog is never flagged.
- within that grace, the lease of the recorded run is released once a describe says the run
  is closed (the course waits for the grace; the run may still be writing its end).
Leases (ZSCAN pages), except those of a run an active course names (the course pages check
them, so a steady-state lease page asks Temporal nothing): a lease whose run is closed →
released.
After a pass that read everything the epoch is written, if Redis kept the whole rebuild.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from activities.types import ReconcilePage, ReconcileSummary, Repair
from admission import GlobalHolder, Leases, RunRef
from db.reconcile import ActiveCourse, ReconcileRepository
from db.repository import CourseRepository
from reconciler.progress import ProgressMemory
from reconciler.repairs import COURSE_FAILED, LEASE_RELEASED, LEASE_RESTORED, WORKER_TIMEOUT
from reconciler.runs import RunLookup, RunState
from telemetry import log_system_metric
from workflows.types import course_id_of, workflow_id_for

log = structlog.get_logger("reconciler")
T = TypeVar("T")
Count = Callable[[str], None]
ORPHANED = "orphaned_job_recovery"


@dataclass(frozen=True)
class Policy:
    grace_seconds: float  # RECONCILE_GRACE_SECONDS
    stuck_after_seconds: float  # STUCK_AFTER_SECONDS
    default_ttl_seconds: float  # a restored lease's ttl for a run without execution timeout
    page_size: int = 500
    concurrency: int = 16  # describes and repairs in flight at once within a page


@dataclass(frozen=True)
class Stores:
    courses: CourseRepository
    reconcile: ReconcileRepository
    leases: Leases
    runs: RunLookup
    progress: ProgressMemory


class Reconciler:
    def __init__(self, stores: Stores, policy: Policy, count: Count | None = None) -> None:
        self._s = stores
        self._policy = policy
        self._count = count or (lambda kind: None)
        self._gate = asyncio.Semaphore(policy.concurrency)

    async def run_pass(self) -> ReconcileSummary:
        """A whole pass in this process (the CLI and the benchmark)."""
        summary = ReconcileSummary()
        token = await self.begin()
        cursor: str | None = ""
        while cursor is not None:
            page = await self.courses_page(cursor)
            summary.repairs += page.repairs
            summary.courses += page.seen
            cursor = page.next or None
        cursor = "0"
        while cursor is not None:
            page = await self.leases_page(cursor)
            summary.repairs += page.repairs
            summary.leases += page.seen
            cursor = page.next or None
        summary.epoch_written = await self.finish(token)
        return summary

    async def begin(self) -> str:
        return await self._s.leases.begin_rebuild()

    async def finish(self, token: str) -> bool:
        written = await self._s.leases.finish_rebuild(token)
        if not written:
            log.warning("epoch not written: the lease store changed during the pass")
        return written

    async def courses_page(self, after: str) -> ReconcilePage:
        """Check one page of active courses, starting after course id `after` ("" = first)."""
        rows = await self._s.reconcile.active_page(after, self._policy.page_size)
        workflow_ids = [workflow_id_for(row.course_id) for row in rows]
        open_runs = await self._s.runs.open_among(workflow_ids)
        held = await self._s.leases.leases_of(workflow_ids)
        checks = [
            self._course(row, open_runs.get(wid), held.get(wid))
            for row, wid in zip(rows, workflow_ids, strict=True)
        ]
        repairs = _flat(await self._bounded(checks))
        last = len(rows) == self._policy.page_size
        return ReconcilePage(repairs, rows[-1].course_id if rows and last else "", len(rows))

    async def leases_page(self, cursor: str) -> ReconcilePage:
        """Check one ZSCAN page of leases ("0" = the first); the next cursor "" when done.

        A lease whose run an active course names is the course pages' to check (they release
        it once its run is closed), so only the others are looked up in visibility: in the
        steady state a lease page costs Temporal no query at all."""
        next_cursor, leases = await self._s.leases.holders_page(cursor, self._policy.page_size)
        ids = [course_id_of(lease.holder) for lease in leases]
        named = await self._s.reconcile.active_runs(ids)
        unchecked = [
            lease
            for lease, course_id in zip(leases, ids, strict=True)
            if not lease.run_id or named.get(course_id) != (lease.run_id, lease.user_id)
        ]
        open_runs = await self._s.runs.open_among([lease.holder for lease in unchecked])
        checks = [self._lease(lease, open_runs.get(lease.holder)) for lease in unchecked]
        repairs = _flat(await self._bounded(checks))
        return ReconcilePage(repairs, "" if next_cursor == "0" else next_cursor, len(leases))

    async def _course(
        self, row: ActiveCourse, open_run: str | None, lease: RunRef | None
    ) -> list[Repair]:
        workflow_id = workflow_id_for(row.course_id)
        state: RunState | None = None
        if not (row.run_id and open_run == row.run_id):
            if row.idle_seconds < self._policy.grace_seconds:
                return await self._closed_runs_lease(row, lease)
            state = await self._s.runs.describe(workflow_id, row.run_id)
            if not state.open:
                return await self._orphan(row, state)
            if not row.run_id:
                return []  # a run of this course is open but has not claimed the row yet
        return await self._open(row, state, lease)

    async def _closed_runs_lease(self, row: ActiveCourse, lease: RunRef | None) -> list[Repair]:
        """Within the grace the course waits, but the lease of its run is freed as soon as a
        describe says the run is closed (the lease pages leave such leases to this check)."""
        if lease is None or not row.run_id or lease.run_id != row.run_id:
            return []
        ended = await self._free_if_closed(row.user_id, workflow_id_for(row.course_id), row.run_id)
        return [self._repair(LEASE_RELEASED, row, ended)] if ended else []

    async def _open(
        self, row: ActiveCourse, state: RunState | None, lease: RunRef | None
    ) -> list[Repair]:
        workflow_id, repairs = workflow_id_for(row.course_id), []
        if lease is None:
            state = state or await self._s.runs.describe(workflow_id, row.run_id)
            if state.open and await self._restore(row, state):
                repairs.append(self._repair(LEASE_RESTORED, row, "the run is open"))
        if row.idle_seconds >= self._policy.stuck_after_seconds:
            state = state or await self._s.runs.describe(workflow_id, row.run_id)
            repairs += await self._stuck(row, state)
        return repairs

    async def _restore(self, row: ActiveCourse, state: RunState) -> bool:
        """Put the open run's lease back, then read the row again: a run that wrote its end
        (and then, always after that write, freed its lease) while this pass looked would
        otherwise leave the restored lease behind a closed run; it is taken back at once."""
        expires = state.expires_at or time.time() + self._policy.default_ttl_seconds
        if expires <= time.time():
            return False
        run = RunRef(state.run_id, state.started_at)
        workflow_id = workflow_id_for(row.course_id)
        if not await self._s.leases.restore(
            row.user_id, workflow_id, run, expires, state.started_at
        ):
            return False
        if await self._s.reconcile.still_active(row.course_id, state.run_id):
            return True
        await self._s.leases.release(row.user_id, workflow_id, state.run_id)
        return False

    async def _orphan(self, row: ActiveCourse, state: RunState) -> list[Repair]:
        """Fail the course of a run that is gone, release its lease, record the recovery."""
        workflow_id, what = workflow_id_for(row.course_id), state.ending
        details = {"reconciler": what, "temporal_status": state.status}
        failed = await self._s.reconcile.fail_orphan(
            row.course_id, row.run_id, f"Generation stopped: {what}", details,
            self._policy.grace_seconds,
        )  # fmt: skip
        released = await self._s.leases.release(row.user_id, workflow_id, row.run_id or "")
        repairs = [self._repair(COURSE_FAILED, row, what)] if failed else []
        if released:
            repairs.append(self._repair(LEASE_RELEASED, row, state.status))
        if failed:
            metadata = {
                "run_id": row.run_id,
                "found": what,
                "temporal_status": state.status,
                "previous_status": row.generation_status,
                "repairs": [repair.kind for repair in repairs],
                "source": "reconciler",
            }
            await self._metric(ORPHANED, "warn", row, metadata)
        return repairs

    async def _stuck(self, row: ActiveCourse, state: RunState) -> list[Repair]:
        """`worker_timeout` once per run whose started stage has shown the same heartbeat
        details for `STUCK_AFTER_SECONDS`; a stage still in a backlog is never flagged."""
        now, repairs = time.time(), []
        workflow_id = workflow_id_for(row.course_id)
        for stage in (stage for stage in state.pending if stage.started):
            since = await self._s.progress.unchanged_since(state.run_id, stage, now)
            if now - since < self._policy.stuck_after_seconds:
                continue
            if await self._s.reconcile.flagged(workflow_id, state.run_id):
                continue
            what = f"{stage.activity_type} unchanged for {now - since:.0f}s"
            metadata = {
                "run_id": state.run_id,
                "stage": stage.activity_type,
                "attempt": stage.attempt,
                "unchanged_seconds": round(now - since, 1),
                "source": "reconciler",
            }
            await self._metric(WORKER_TIMEOUT, "warn", row, metadata)
            repairs.append(self._repair(WORKER_TIMEOUT, row, what, state.run_id))
        return repairs

    async def _lease(self, lease: GlobalHolder, open_run: str | None) -> list[Repair]:
        if open_run is not None and lease.run_id in ("", open_run):
            return []
        ended = await self._free_if_closed(lease.user_id, lease.holder, lease.run_id)
        if not ended:
            return []
        repair = Repair(LEASE_RELEASED, lease.holder, lease.run_id, user_id=lease.user_id)
        repair.detail = ended
        return [self._noted(repair)]

    async def _free_if_closed(self, user_id: str, workflow_id: str, run_id: str) -> str | None:
        """Release run `run_id`'s lease (only that run's) once a describe says the run is closed
        or missing; the status it ended with when this call released it, else None."""
        state = await self._s.runs.describe(workflow_id, run_id or None)
        if state.open or not await self._s.leases.release(user_id, workflow_id, run_id):
            return None
        return state.status

    def _repair(self, kind: str, row: ActiveCourse, detail: str, run_id: str = "") -> Repair:
        workflow_id = workflow_id_for(row.course_id)
        run = run_id or row.run_id or ""
        return self._noted(Repair(kind, workflow_id, run, row.course_id, row.user_id, detail))

    def _noted(self, repair: Repair) -> Repair:
        """Count and log a repair: one line each."""
        self._count(repair.kind)
        log.warning("reconciler repair", **dataclasses.asdict(repair))
        return repair

    async def _metric(
        self, event: str, severity: str, row: ActiveCourse, metadata: dict[str, Any]
    ) -> None:
        """One `system_metrics` row, logged at its severity as every row is."""
        course, user, job = row.course_id, row.user_id, workflow_id_for(row.course_id)
        log_system_metric(
            event, severity, course_id=course, workflow_id=job, user_id=user, metadata=metadata
        )
        await self._s.courses.record_metric(
            event, severity, user_id=user, course_id=course, job_id=job, metadata=metadata
        )

    async def _bounded(self, calls: Iterable[Awaitable[T]]) -> list[T]:
        async def one(call: Awaitable[T]) -> T:
            async with self._gate:
                return await call

        return list(await asyncio.gather(*(one(call) for call in calls)))


def _flat(nested: list[list[Repair]]) -> list[Repair]:
    return [repair for repairs in nested for repair in repairs]
