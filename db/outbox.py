"""The webhook outbox: events the `courses` trigger queued, claimed and settled by dispatchers.

One method per named query of `db/queries.sql`. A claim leases the due head event of each course
(`FOR UPDATE SKIP LOCKED`, so dispatchers never take the same event, nor two of one course).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from db.queries import QUERIES

Settled = Literal["delivered", "failed", "superseded"]


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    webhook_id: str
    course_id: str
    user_id: str
    url: str
    payload: dict[str, Any]
    event_type: str
    attempts: int  # this attempt included
    created_at: datetime
    superseded: bool  # a stale progress event a newer progress event of its course replaces

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> OutboxEvent:
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})


class Outbox:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(
        self, limit: int, lease_seconds: float, coalesce_after_seconds: float
    ) -> list[OutboxEvent]:
        """Up to `limit` due head events, leased for `lease_seconds`, attempt counted."""
        query = QUERIES["claim_webhooks"]
        records = await self._pool.fetch(query, limit, lease_seconds, coalesce_after_seconds)
        return [OutboxEvent.from_record(record) for record in records]

    async def settle(self, event_id: int, status: Settled, error: str | None = None) -> None:
        await self._pool.execute(QUERIES["finish_webhook"], event_id, status, error)

    async def retry(self, event_id: int, delay_seconds: float, error: str | None) -> None:
        await self._pool.execute(QUERIES["retry_webhook"], event_id, delay_seconds, error)

    async def purge(self, older_than_seconds: float) -> None:
        """Forget delivered and superseded events settled longer ago than that."""
        await self._pool.execute(QUERIES["purge_webhooks"], older_than_seconds)
