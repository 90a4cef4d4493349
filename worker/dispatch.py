"""The webhook outbox dispatcher's wiring: delivery is owned by the worker, outside the runs."""

from __future__ import annotations

import asyncpg
from temporalio.runtime import Runtime

from activities.metrics import WorkerMetrics
from db.outbox import Outbox
from settings import Settings
from webhooks.addresses import AddressGuard
from webhooks.dispatcher import Dispatcher, DispatchPolicy
from webhooks.sender import Sender


def webhook_dispatcher(
    settings: Settings, pool: asyncpg.Pool, runtime: Runtime | None = None
) -> Dispatcher:
    """The webhook outbox dispatcher: delivery is owned here, outside the runs."""
    guard = AddressGuard(
        allow_http=settings.api.allow_http_webhooks, allow_hosts=settings.webhook.allow_hosts
    )
    policy = DispatchPolicy(retry_seconds=settings.webhook.retry_seconds)
    counter = WorkerMetrics.on((runtime or Runtime.default()).metric_meter).webhook_deliveries
    return Dispatcher(
        Outbox(pool),
        Sender(guard),
        settings.webhook.secret,
        policy,
        count=lambda result: counter.add(1, {"result": result}),
    )
