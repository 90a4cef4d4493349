"""The reconciler's Schedule, applied at the worker's start."""

from __future__ import annotations

import logging

from temporalio.client import Client

from reconciler.schedule import apply_schedule, start_pass
from settings import Settings

log = logging.getLogger("worker")


async def start_reconciler(client: Client, settings: Settings) -> None:
    """Create, update or delete the reconciler's Schedule and ask for a pass now (unless the
    interval is 0). A failure is logged: the worker runs on, the next start tries again."""
    queue, interval = settings.temporal.task_queue, settings.reconcile.interval_seconds
    try:
        log.info("reconciler schedule %s", await apply_schedule(client, queue, interval))
        if interval > 0:
            await start_pass(client, queue)
    except Exception as exc:
        log.warning("reconciler schedule not applied: %s", exc)
