"""Course data access: one short async method per named query (see `db/queries.sql`).

SQLSTATE CG001 (a refused generation_status move) surfaces as `InvalidTransition`, CG002 (a
write from a run the course no longer belongs to) as `StaleRun`, a lost
or refused connection as `DatabaseUnavailable`, refused arguments as `InvalidArgument`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from db.errors import (
    DatabaseUnavailable,
    InvalidArgument,
    InvalidTransition,
    StaleRun,
    translate,
)
from db.ids import parse_uuid
from db.queries import QUERIES

__all__ = [
    "CourseRead",
    "CourseRepository",
    "CourseRow",
    "DatabaseUnavailable",
    "InvalidArgument",
    "InvalidTransition",
    "StaleRun",
]

DEFAULT_STUCK_AFTER_SECONDS = 900


@dataclass(frozen=True)
class CourseRow:
    """Every column of `public.courses`: uuids as str, aware datetimes, jsonb decoded."""

    id: str
    user_id: str
    title: str
    language: str | None
    style: str | None
    course_description: str | None
    target_audience: str | None
    difficulty: str | None
    lesson_duration_minutes: int | None
    learning_outcomes: str | None
    estimated_lessons: int | None
    estimated_sections: int | None
    content_strategy: str | None
    output_formats: list[str] | None
    generation_status: str | None
    generation_progress: dict[str, Any] | None
    generation_started_at: datetime | None
    generation_completed_at: datetime | None
    last_progress_update: datetime | None
    webhook_url: str | None
    error_message: str | None
    error_details: Any
    workflow_id: str | None
    run_id: str | None
    run_started_at: datetime | None
    progress_seq: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> CourseRow:
        values = {field.name: record[field.name] for field in fields(cls)}
        values["id"], values["user_id"] = str(record["id"]), str(record["user_id"])
        return cls(**values)


@dataclass(frozen=True)
class CourseRead:
    """A course row with what a status read or a start needs beside it, read in the same
    query: the caller's stored tier and, for a rolled-back course, what its run's saga undid."""

    course: CourseRow
    caller_tier: str | None
    undone: list[str] | None


class CourseRepository:
    """Reads and writes course generation state through the SQL functions of `db/migrations`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get_course(self, course_id: str) -> CourseRow | None:
        """The course row, or None when absent (a malformed id cannot name a course)."""
        parsed = parse_uuid(course_id)
        if parsed is None:
            return None
        record = await self._fetchrow("get_course", parsed)
        return None if record is None else CourseRow.from_record(record)

    async def get_course_for(self, course_id: str, caller_id: str) -> CourseRead | None:
        """The course row, `caller_id`'s stored tier (whoever owns the course) and what the
        recorded run's rollback undid, in one round trip; None when the course is absent."""
        parsed = parse_uuid(course_id)
        if parsed is None:
            return None
        record = await self._fetchrow("get_course_for", parsed, parse_uuid(caller_id))
        if record is None:
            return None
        tier = record["caller_tier"]
        return CourseRead(
            CourseRow.from_record(record),
            None if tier is None else str(tier),
            _names(record["undone"]),
        )

    async def get_user_tier(self, user_id: str) -> str | None:
        """`user_profiles.tier` as stored, or None without a profile row."""
        parsed = parse_uuid(user_id)
        if parsed is None:
            return None
        tier = await self._fetchval("get_user_tier", parsed)
        return None if tier is None else str(tier)

    async def begin_generation(
        self,
        course_id: str,
        workflow_id: str,
        run_id: str,
        generation_type: str,
        run_started_at: datetime,
        webhook_url: str | None = None,
        writes: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any] | None:
        """Claim the course for a run, recording its `webhook_url`, then make each of `writes`
        (`step_id`, `status`, `message`, `metadata`) through `update_course_progress`: one call,
        one transaction. `StaleRun` when a run that started later holds the course."""
        args = (_uuid(course_id), workflow_id, run_id, generation_type, run_started_at)
        claim = (*args, webhook_url, list(writes))
        return _document(await self._fetchval("claim_generation", *claim))

    async def progress_snapshots(self, course_ids: Sequence[str]) -> list[asyncpg.Record]:
        """The progress columns of each listed course that exists."""
        ids = [parsed for parsed in map(parse_uuid, course_ids) if parsed is not None]
        records: list[asyncpg.Record] = await self._run(self._pool.fetch, "progress_snapshots", ids)
        return records

    async def update_progress(
        self,
        course_id: str,
        step_id: int,
        status: str,
        message: str,
        error_message: str | None = None,
        error_details: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        args = (step_id, status, message, error_message, error_details, metadata or {})
        return _document(await self._fetchval("update_progress", _uuid(course_id), *args))

    async def update_progress_steps(
        self, course_id: str, writes: Sequence[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Each of `writes` (`step_id`, `status`, `message`, optional `error_message`,
        `error_details`, `metadata`) through `update_course_progress`, in order: one call, one
        transaction, all or none. None when the course does not exist."""
        return _document(
            await self._fetchval("update_progress_steps", _uuid(course_id), list(writes))
        )

    async def finish_generation(
        self,
        course_id: str,
        run_id: str | None,
        outcome: str,
        message: str,
        error_details: Any = None,
    ) -> dict[str, Any] | None:
        args = (_uuid(course_id), run_id, outcome, message, error_details)
        return _document(await self._fetchval("finish_generation", *args))

    async def record_metric(
        self,
        event_type: str,
        severity: str,
        *,
        user_id: str | None = None,
        course_id: str | None = None,
        job_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        ids = (_optional_uuid(user_id), _optional_uuid(course_id))
        await self._fetchval("record_metric", event_type, severity, *ids, job_id, metadata or {})

    async def generation_summary(
        self, course_id: str, stuck_after_seconds: int = DEFAULT_STUCK_AFTER_SECONDS
    ) -> dict[str, Any] | None:
        args = (_uuid(course_id), stuck_after_seconds)
        return _document(await self._fetchval("generation_summary", *args))

    async def rollback_undone(self, course_id: str, run_id: str) -> list[str] | None:
        """What the run's saga undid, in order (its `job_rollback` metric's `undone`), or None
        when the run recorded no rollback."""
        return _names(await self._fetchval("rollback_undone", _uuid(course_id), run_id))

    async def status_history(self, course_id: str) -> list[dict[str, Any]]:
        records = await self._run(self._pool.fetch, "status_history", _uuid(course_id))
        return [dict(record) for record in records]

    async def _fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        return await self._run(self._pool.fetchrow, name, *args)  # type: ignore[no-any-return]  # `_run` passes asyncpg's Any through

    async def _fetchval(self, name: str, *args: Any) -> Any:
        return await self._run(self._pool.fetchval, name, *args)

    @staticmethod
    async def _run(method: Callable[..., Awaitable[Any]], name: str, *args: Any) -> Any:
        """Run the named query, raising the typed errors of `db.errors`."""
        try:
            return await method(QUERIES[name], *args)
        except Exception as exc:
            typed = translate(exc)
            if typed is exc:
                raise
            raise typed from exc


def _uuid(value: str) -> uuid.UUID:
    parsed = parse_uuid(value)
    if parsed is None:
        raise InvalidArgument(f"not a UUID: {value!r}")
    return parsed


def _optional_uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else _uuid(value)


def _names(value: Any) -> list[str] | None:
    """A jsonb array of names (a rollback's `undone`) as strings; None for anything else."""
    return [str(name) for name in value] if isinstance(value, list) else None


def _document(value: Any) -> dict[str, Any] | None:
    return None if value is None else dict(value)
