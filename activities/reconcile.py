"""The reconcile pass as activities, one per step of `ReconcileWorkflow`: begin, a page of
active courses, a page of leases, finish (writes the epoch). The logic is the `reconciler`
package's; these only carry it into Temporal, so each page is retried on its own.
"""

from __future__ import annotations

from temporalio import activity

from activities.types import (
    RECONCILE_BEGIN,
    RECONCILE_COURSES,
    RECONCILE_FINISH,
    RECONCILE_LEASES,
    ReconcileCursor,
    ReconcilePage,
    ReconcileToken,
)
from reconciler.core import Reconciler


class ReconcileActivities:
    def __init__(self, reconciler: Reconciler) -> None:
        self._reconciler = reconciler

    @activity.defn(name=RECONCILE_BEGIN)
    async def begin(self) -> ReconcileToken:
        return ReconcileToken(await self._reconciler.begin())

    @activity.defn(name=RECONCILE_COURSES)
    async def courses_page(self, inp: ReconcileCursor) -> ReconcilePage:
        return await self._reconciler.courses_page(inp.cursor)

    @activity.defn(name=RECONCILE_LEASES)
    async def leases_page(self, inp: ReconcileCursor) -> ReconcilePage:
        return await self._reconciler.leases_page(inp.cursor)

    @activity.defn(name=RECONCILE_FINISH)
    async def finish(self, inp: ReconcileToken) -> bool:
        return await self._reconciler.finish(inp.token)
