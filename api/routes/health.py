"""`/healthz` (the process answers) and `/readyz` (a start would be served now).

See [operations: production settings](../../docs/operations.md#production-settings) for how a
deployment uses them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from temporalio.api.enums.v1 import TaskQueueType

import temporal_connect
from api.deps import StateDep
from api.problems import Problem
from api.state import ApiState
from db.migrate import SchemaBehind, check_schema
from settings import TemporalSettings
from workflows.steps import STAGE_NAMES

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 2.0
ACTIVITY = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY


class NotReady(Exception):
    """One readiness check failed; `str()` says what is not ready."""


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"description": "Something a start needs is not ready (named in `failing`)"}},
)
async def readyz(state: StateDep) -> JSONResponse:
    """200 only when PostgreSQL (schema current), Redis and Temporal (search attributes
    registered, a live poller on the workflow queue and on every stage's queue) all answer;
    else 503 naming what is not."""
    checks = {
        "postgresql": _postgres(state),
        "redis": _redis(state),
        "temporal": _temporal(state),
    }
    results = await asyncio.gather(*(_run(c) for c in checks.values()))
    report = dict(zip(checks, results, strict=True))
    failing = [f"{name}: {result}" for name, result in report.items() if result != "ok"]
    body: dict[str, Any] = {"status": "not ready" if failing else "ready", "checks": report}
    if failing:
        body["failing"] = failing
    return JSONResponse(body, status_code=503 if failing else 200)


async def _run(check: Awaitable[None]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check
    except (NotReady, SchemaBehind) as exc:
        return str(exc)
    except Problem as exc:
        return exc.detail
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return "ok"


async def _postgres(state: ApiState) -> None:
    await check_schema(state.pool)


async def _redis(state: ApiState) -> None:
    await state.redis.ping()


async def _temporal(state: ApiState) -> None:
    client = await state.temporal.client()
    missing = sorted(await temporal_connect.missing_search_attributes(client))
    if missing:
        raise NotReady(f"search attributes not registered: {', '.join(missing)}")
    queues = _queues(state.settings.temporal)
    polled = await asyncio.gather(
        *(temporal_connect.live_pollers(client, queue, kind) for queue, kind in queues)
    )
    idle = [queue for (queue, _), pollers in zip(queues, polled, strict=True) if not pollers]
    if idle:
        plural = "s" if len(idle) > 1 else ""
        raise NotReady(f"no worker polls task queue{plural} {', '.join(idle)}")


def _queues(temporal: TemporalSettings) -> list[tuple[str, TaskQueueType.ValueType]]:
    """The workflow queue and every stage's queue, whoever serves it (our simulated stages or
    another fleet): a run needs all of them polled."""
    stages = [(temporal.stage_queue(stage), ACTIVITY) for stage in STAGE_NAMES]
    return [(temporal.task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW), *stages]
