"""The dispatcher: drains the webhook outbox of the database, in order per course.

Each round claims the due head event of up to `batch` courses and delivers them concurrently.
An event is delivered at least once, always with the same `webhook-id`; a failed attempt is
retried with exponential backoff until `retry_seconds` after the event was queued, then the
event is marked failed (its row keeps the last error) and logged. A progress event that waited
longer than `coalesce_after_seconds` while a newer progress event of its course is queued is
skipped (`superseded`); a terminal event never is. A LISTEN on `webhook_outbox` wakes an idle
dispatcher at once; without it, it polls every `idle_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from opentelemetry.instrumentation.utils import suppress_instrumentation

from db.errors import CONNECTION_ERRORS
from db.listen import Listener
from db.outbox import Outbox, OutboxEvent
from webhooks.sender import Outcome, Sender
from webhooks.signing import signed_headers, user_secret

CHANNEL = "webhook_outbox"
log = structlog.get_logger("webhooks.dispatcher")


@dataclass(frozen=True)
class DispatchPolicy:
    retry_seconds: float = 3600
    batch: int = 16
    lease_seconds: float = 60  # longer than one attempt (5 s) by far
    idle_seconds: float = 1.0
    first_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    coalesce_after_seconds: float = 30.0
    keep_seconds: float = 7 * 86_400  # delivered and superseded rows are purged after this
    purge_every_seconds: float = 3600

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after `attempts` failed ones (±20 % jitter)."""
        doubled = self.first_backoff_seconds * 2.0 ** max(attempts - 1, 0)
        base = min(doubled, self.max_backoff_seconds)
        return base * random.uniform(0.8, 1.2)


class Dispatcher:
    """`count(result)` is told of each attempt: `delivered` or `failed` (a metric)."""

    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        master_secret: str,
        policy: DispatchPolicy,
        count: Callable[[str], None] = lambda result: None,
    ) -> None:
        self._outbox, self._sender, self._master = outbox, sender, master_secret
        self._policy, self._count = policy, count
        self._wake = asyncio.Event()
        self._purged_at = float("-inf")

    @contextlib.asynccontextmanager
    async def running(self, dsn: str) -> AsyncIterator[Dispatcher]:
        """Dispatch in the background, woken by notifications, while the context is open."""
        listener = Listener(
            dsn, CHANNEL, lambda _: self._wake.set(), self._woken, application_name="cg-webhooks"
        )
        task = asyncio.create_task(self.run(), name="webhook-dispatcher")
        try:
            async with listener.running():
                yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._sender.aclose()

    async def run(self) -> None:
        """Rounds until cancelled; idle (or after a database error) until woken or polled. Not
        traced: a poll every second would fill the traces with root database spans."""
        with suppress_instrumentation():
            await self._rounds()

    async def _rounds(self) -> None:
        while True:
            try:
                delivered = await self.drain()
            except CONNECTION_ERRORS as exc:
                log.warning("webhook outbox unavailable", error=str(exc))
                delivered = 0
            except Exception:
                log.exception("webhook dispatch round failed")
                delivered = 0
            if delivered == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._policy.idle_seconds)

    async def drain(self) -> int:
        """One round: claim due events and settle each; the number claimed."""
        await self._purge_now_and_then()
        policy = self._policy
        events = await self._outbox.claim(
            policy.batch, policy.lease_seconds, policy.coalesce_after_seconds
        )
        outcomes = await asyncio.gather(
            *(self._handle(event) for event in events), return_exceptions=True
        )
        for failure in (o for o in outcomes if isinstance(o, Exception)):
            # the event stays leased and is tried again when its lease ends
            log.warning("webhook event not settled", error=f"{type(failure).__name__}: {failure}")
        return len(events)

    async def _woken(self) -> None:
        self._wake.set()

    async def _handle(self, event: OutboxEvent) -> None:
        if event.superseded:
            await self._outbox.settle(event.id, "superseded")
            return
        outcome = await self._deliver(event)
        self._count("delivered" if outcome.delivered else "failed")
        if outcome.delivered:
            await self._outbox.settle(event.id, "delivered")
            return
        delay = self._policy.backoff(event.attempts)
        waited = (datetime.now(UTC) - event.created_at).total_seconds()
        if outcome.permanent or waited + delay > self._policy.retry_seconds:
            await self._give_up(event, outcome)
        else:
            await self._outbox.retry(event.id, delay, outcome.error)

    async def _deliver(self, event: OutboxEvent) -> Outcome:
        body = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":"))
        secret = user_secret(self._master, event.user_id)
        headers = signed_headers(secret, event.webhook_id, body, datetime.now(UTC))
        return await self._sender.send(event.url, headers, body.encode())

    async def _give_up(self, event: OutboxEvent, outcome: Outcome) -> None:
        await self._outbox.settle(event.id, "failed", outcome.error)
        log.warning(
            "webhook delivery failed",
            course_id=event.course_id,
            webhook_id=event.webhook_id,
            event_type=event.event_type,
            attempts=event.attempts,
            error=outcome.error,
        )

    async def _purge_now_and_then(self) -> None:
        if time.monotonic() - self._purged_at >= self._policy.purge_every_seconds:
            self._purged_at = time.monotonic()
            await self._outbox.purge(self._policy.keep_seconds)
