"""`ReconcileWorkflow`: one reconcile pass, page by page, as activities. Deterministic only.

Started by the reconciler's Schedule (every `RECONCILE_INTERVAL_SECONDS`, overlap SKIP) and on
demand (the worker at start, a reserve refused for want of the epoch). Each page is its own
activity, retried on its own; a pass that could not read everything writes no epoch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import types as act
    from activities.types import (
        ReconcileCursor,
        ReconcilePage,
        ReconcileSummary,
        ReconcileToken,
    )

T = TypeVar("T")
RECONCILE_WORKFLOW = "ReconcileWorkflow"
PAGE_TIMEOUT = timedelta(minutes=2)
# A page heartbeats while it works: one lost with its worker is retried after this, instead of
# holding the pass (and with it the Schedule, overlap SKIP) for the whole PAGE_TIMEOUT.
PAGE_HEARTBEAT = timedelta(seconds=10)
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
)


@workflow.defn(name=RECONCILE_WORKFLOW)
class ReconcileWorkflow:
    """Begin the rebuild, check every page of active courses and then of leases, write the
    epoch; returns what was repaired."""

    @workflow.run
    async def run(self) -> ReconcileSummary:
        begun = await self._call(act.RECONCILE_BEGIN, None, ReconcileToken)
        summary = ReconcileSummary()
        async for page in self._pages(act.RECONCILE_COURSES, ""):
            summary.repairs += page.repairs
            summary.courses += page.seen
        async for page in self._pages(act.RECONCILE_LEASES, "0"):
            summary.repairs += page.repairs
            summary.leases += page.seen
        summary.epoch_written = await self._call(act.RECONCILE_FINISH, begun, bool)
        return summary

    async def _pages(self, name: str, cursor: str) -> AsyncIterator[ReconcilePage]:
        """Every page of activity `name`, from `cursor` until a page says there is no next."""
        while True:
            page = await self._call(name, ReconcileCursor(cursor), ReconcilePage)
            yield page
            if not page.next:
                return
            cursor = page.next

    @staticmethod
    async def _call(name: str, arg: object, result_type: type[T]) -> T:
        args = [] if arg is None else [arg]
        result: T = await workflow.execute_activity(
            name,
            args=args,
            result_type=result_type,
            start_to_close_timeout=PAGE_TIMEOUT,
            heartbeat_timeout=PAGE_HEARTBEAT,
            retry_policy=PAGE_RETRY,
        )
        return result
