"""Helpers for the database tests: reading rows back, expected documents, transitions, roles."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from db.repository import CourseRepository
from tests.factories import insert_course, new_id, run_start

STEP_NAMES = {
    1: "Запуск генерации",
    3: "Генерация структуры",
    4: "Создание контента",
    5: "Финализация",
}
STEP_TWO = {True: "Обработка документов", False: "Анализ задачи"}
STATUSES = (
    "pending",
    "initializing",
    "processing_documents",
    "analyzing_task",
    "generating_structure",
    "generating_content",
    "finalizing",
    "completed",
    "failed",
    "cancelled",
)
TERMINAL = ("completed", "failed", "cancelled")
NON_TERMINAL = tuple(status for status in STATUSES if status not in TERMINAL)
CHAIN = {
    "pending": ("initializing",),
    "initializing": ("processing_documents", "analyzing_task"),
    "processing_documents": ("generating_structure",),
    "analyzing_task": ("generating_structure",),
    "generating_structure": ("generating_content",),
    "generating_content": ("finalizing",),
    "finalizing": ("completed",),
}
TS = "<timestamp>"
# The progress writes of a whole run, in order: each step in progress, then completed.
FULL_RUN = [(step, status) for step in range(1, 6) for status in ("in_progress", "completed")]


def allowed_targets(old: str | None) -> set[str]:
    """The statuses `old` may move to (same -> same excluded): from NULL anywhere; along the
    forward chain one step at a time; from any non-terminal status to failed or cancelled; from
    a terminal status back to pending, when a new run claims the course."""
    if old is None:
        return set(STATUSES)
    if old in TERMINAL:
        return {"pending"}
    return {*CHAIN[old], "failed", "cancelled"}


async def claimed_course(
    repo: CourseRepository,
    pool: asyncpg.Pool,
    generation_type: str = "STRUCTURE_ANALYSIS",
    steps: Iterable[tuple[int, str]] = (),
) -> tuple[str, str]:
    """A fresh course claimed by a new run (workflow id `wf`), then moved by that run's progress
    writes (message `m`) of `steps`, each a (step, status); returns (course id, run id)."""
    course_id, run_id = await insert_course(pool), new_id()
    await repo.begin_generation(course_id, "wf", run_id, generation_type, run_start())
    for step, status in steps:
        await repo.update_progress(course_id, step, status, "m", metadata={"run_id": run_id})
    return course_id, run_id


def step_rows(run_id: str, writes: Iterable[tuple[int, str]], **extra: Any) -> list[dict[str, Any]]:
    """Step writes of run `run_id` (message `m`) as the one-call functions take them, each a
    (step, status), with `extra` fields on every row."""
    return [
        {"step_id": step, "status": status, "message": "m", "metadata": {"run_id": run_id}} | extra
        for step, status in writes
    ]


def without_times(value: Any) -> Any:
    """A progress document with its timestamps left out (two rows are written moments apart)."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if not k.endswith("_at")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


async def row(pool: asyncpg.Pool, course_id: str) -> dict[str, Any]:
    record = await pool.fetchrow(
        "SELECT *, generation_status::text AS status FROM public.courses WHERE id = $1",
        uuid.UUID(course_id),
    )
    assert record is not None
    return dict(record)


async def history(pool: asyncpg.Pool, course_id: str) -> list[tuple[str | None, str]]:
    records = await pool.fetch(
        "SELECT old_status::text, new_status::text FROM public.generation_status_history"
        " WHERE course_id = $1 ORDER BY changed_at, id",
        uuid.UUID(course_id),
    )
    return [(record[0], record[1]) for record in records]


def expected_step(step_id: int, has_documents: bool, **changes: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": step_id,
        "name": STEP_NAMES.get(step_id, STEP_TWO[has_documents]),
        "status": "pending",
        "started_at": None,
        "completed_at": None,
        "error": None,
        "error_details": None,
        "metadata": {},
    }
    return step | changes


def expected_document(has_documents: bool, **top: Any) -> dict[str, Any]:
    return {
        "steps": [expected_step(i, has_documents) for i in range(1, 6)],
        "total_steps": 5,
        "current_step": 1,
        "percentage": 0,
        "message": "",
        "has_documents": has_documents,
    } | top


def masked(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every step timestamp that parses as ISO-8601 UTC replaced by TS."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    for step in copy["steps"]:
        for key in ("started_at", "completed_at"):
            if step[key] is not None:
                assert datetime.fromisoformat(step[key]).tzinfo is not None, step[key]
                step[key] = TS
    return copy


@contextlib.asynccontextmanager
async def as_role(
    pool: asyncpg.Pool, role: str, user_id: str | None = None
) -> AsyncIterator[PoolConnectionProxy]:
    """A connection acting as `role` with Supabase-style claims, in a rolled-back transaction."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(f"SET LOCAL ROLE {role}")
            if user_id is not None:
                claims = json.dumps({"sub": user_id, "role": role})
                await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)
            yield conn
        finally:
            await transaction.rollback()
