"""The reconciler's reads and writes of `public.courses` (named queries `reconcile_*`).

Kept apart from `CourseRepository`, whose methods are the run's own writers; metrics go
through `CourseRepository.record_metric` as every other `system_metrics` row does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from db.ids import parse_uuid
from db.repository import CourseRepository

# Below every UUID: where the first keyset page starts.
FIRST = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class ActiveCourse:
    """A course in an active status, as the reconciler sees it."""

    course_id: str
    user_id: str
    generation_status: str
    run_id: str | None
    idle_seconds: float  # since its last progress write (or its last update)


class ReconcileRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def active_page(self, after: str, limit: int) -> list[ActiveCourse]:
        """Up to `limit` active courses whose id sorts after `after` (`FIRST`: from the start)."""
        records = await CourseRepository._run(
            self._pool.fetch, "reconcile_active_page", after or FIRST, limit
        )
        return [ActiveCourse(**dict(record)) for record in records]

    async def active_runs(self, course_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """course id → (the run it names, its user), for those of `course_ids` in an active
        status that name a run (ids that are not UUIDs name no course)."""
        given: dict[uuid.UUID, str] = {}
        for course_id in course_ids:
            parsed = parse_uuid(course_id)
            if parsed is not None:
                given[parsed] = course_id
        if not given:
            return {}
        records = await CourseRepository._run(
            self._pool.fetch, "reconcile_active_runs", list(given)
        )
        return {given[r["id"]]: (r["run_id"], r["user_id"]) for r in records}

    async def fail_orphan(
        self,
        course_id: str,
        run_id: str | None,
        message: str,
        details: dict[str, Any],
        idle_seconds: float,
    ) -> bool:
        """Fail the course if it is still active, still names `run_id` and has been idle for
        `idle_seconds`; True when this call failed it (never twice for one run)."""
        args = (course_id, run_id, message, details, float(idle_seconds))
        applied = await CourseRepository._run(self._pool.fetchval, "reconcile_fail_orphan", *args)
        return applied is True

    async def still_active(self, course_id: str, run_id: str) -> bool:
        """Whether the course is still in an active status and still names `run_id`."""
        found = await CourseRepository._run(
            self._pool.fetchval, "reconcile_still_active", course_id, run_id
        )
        return found is True

    async def flagged(self, workflow_id: str, run_id: str) -> bool:
        """Whether the reconciler already recorded `worker_timeout` for this run."""
        return bool(
            await CourseRepository._run(
                self._pool.fetchval, "reconcile_flagged", workflow_id, run_id
            )
        )
