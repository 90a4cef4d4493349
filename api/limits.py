"""The gateway's own limit check: a start for a user the lease store already shows at the
tier's limit is refused here, before any workflow execution exists.

The run's `reserve_lease` stays the authority for every admission it grants: this check only
refuses what is clearly refused (the holders do not include this course, whose repeat is a
duplicate), and a race between two starts is still refused inside the run. A lease store that
does not answer leaves the decision to the run.
"""

from __future__ import annotations

import asyncio

import structlog

from admission import Holder, Leases, LeaseStoreUnavailable, holder_info
from db.errors import DatabaseUnavailable
from db.repository import CourseRepository
from settings import TierPolicy
from telemetry import log_system_metric
from workflows.types import AdmissionResult, workflow_id_for

log = structlog.get_logger("api.limits")
LIMIT_HIT = "concurrency_limit_hit"


Usage = asyncio.Task[list[Holder] | None]  # the user's leases being read (`read_usage`)


class LimitCheck:
    def __init__(self, leases: Leases, courses: CourseRepository) -> None:
        self._leases, self._courses = leases, courses
        self._reads: set[Usage] = set()  # asyncio keeps only weak references to tasks

    def read_usage(self, user_id: str) -> Usage:
        """The user's leases, read from now on (so the read overlaps the gateway's course read);
        None when the lease store does not answer. A start answered without it (404, 409, a
        joined start) leaves it to finish: cancelling a Redis command costs its connection."""
        task = asyncio.create_task(self._usage(user_id))
        self._reads.add(task)
        task.add_done_callback(self._read_done)
        return task

    async def refusal(
        self,
        usage: Usage,
        user_id: str,
        course_id: str,
        policy: TierPolicy,
    ) -> AdmissionResult | None:
        """A `user_limit` refusal (recorded as `concurrency_limit_hit`), or None to go on."""
        workflow_id = workflow_id_for(course_id)
        holders = await usage
        if holders is None:
            return None
        if len(holders) < policy.limit or any(h.holder == workflow_id for h in holders):
            return None
        refused = AdmissionResult(
            decision="rejected",
            reason="user_limit",
            tier=policy.tier.value,
            limit=policy.limit,
            holders=[holder_info(h) for h in holders],
            workflow_id=workflow_id,
        )
        await self._record(user_id, course_id, refused)
        return refused

    async def _usage(self, user_id: str) -> list[Holder] | None:
        try:
            return await self._leases.usage(user_id)
        except LeaseStoreUnavailable as exc:
            log.warning("limit check skipped: lease store unavailable", error=str(exc))
            return None

    def _read_done(self, task: Usage) -> None:
        """Retrieve the outcome of a read nobody awaited, so asyncio does not report it as
        lost; an unexpected error is logged (an awaited one also reaches the request's error
        handling)."""
        self._reads.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.warning("lease read failed", error=repr(error))

    async def _record(self, user_id: str, course_id: str, refused: AdmissionResult) -> None:
        """The `concurrency_limit_hit` row and, like every row's, its line at its severity,
        written first: still there when PostgreSQL refuses the row."""
        metadata = {
            "reason": refused.reason,
            "tier": refused.tier,
            "limit": refused.limit,
            "holders": [h.workflow_id for h in refused.holders],
            "source": "gateway",
        }
        job = refused.workflow_id
        log_system_metric(
            LIMIT_HIT,
            "warn",
            course_id=course_id,
            workflow_id=job,
            user_id=user_id,
            metadata=metadata,
        )
        try:
            await self._courses.record_metric(
                LIMIT_HIT,
                "warn",
                user_id=user_id,
                course_id=course_id,
                job_id=job,
                metadata=metadata,
            )
        except DatabaseUnavailable as exc:
            log.warning(f"metric {LIMIT_HIT} not recorded", error=str(exc))
