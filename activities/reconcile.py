"""The reconcile pass as activities, one per step of `ReconcileWorkflow`: begin, a page of
active courses, a page of leases, finish (writes the epoch). The logic is the `reconciler`
package's; these only carry it into Temporal, so each page is retried on its own.

Each heartbeats while it works: the workflow gives them a short heartbeat timeout, so a page
lost with its worker is retried within seconds rather than after the page's start-to-close
timeout, during which the Schedule (overlap SKIP) would start no pass at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

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
        async with heartbeating():
            return ReconcileToken(await self._reconciler.begin())

    @activity.defn(name=RECONCILE_COURSES)
    async def courses_page(self, inp: ReconcileCursor) -> ReconcilePage:
        async with heartbeating():
            return await self._reconciler.courses_page(inp.cursor)

    @activity.defn(name=RECONCILE_LEASES)
    async def leases_page(self, inp: ReconcileCursor) -> ReconcilePage:
        async with heartbeating():
            return await self._reconciler.leases_page(inp.cursor)

    @activity.defn(name=RECONCILE_FINISH)
    async def finish(self, inp: ReconcileToken) -> bool:
        async with heartbeating():
            return await self._reconciler.finish(inp.token)


@contextlib.asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat every third of the call's heartbeat timeout while the body runs (nothing
    without one). The SDK sends them from its own task, so a page busy awaiting its stores is
    still seen alive."""
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        yield
        return

    async def beat() -> None:
        while True:
            await asyncio.sleep(timeout.total_seconds() / 3)
            activity.heartbeat()

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
