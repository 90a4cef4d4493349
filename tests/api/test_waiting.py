"""A stage at capacity: runs queue for it one at a time, and the status API says they wait."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.api.support import generation, running_app, workers_on
from tests.factories import bearer, hs_token, insert_course, insert_user, make_settings, queue_env
from tests.helpers import eventually

RUNS = 5
STAGE = "text_generation"
# Quick stages, but text_generation holds its one slot long enough for the others to queue.
SIMULATION = {"stage_seconds": 0.1, "hold_at_step": 4, "hold_seconds": 1.5}


async def stage_interval(
    client: Client, workflow_id: str, run_id: str
) -> tuple[datetime, datetime]:
    """When the run's text_generation started and when it completed."""
    started = completed = None
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes.activity_type.name
        if event.HasField("activity_task_started_event_attributes") and scheduled == STAGE:
            started = event.event_time.ToDatetime()
        if event.HasField("activity_task_completed_event_attributes") and started and not completed:
            completed = event.event_time.ToDatetime()
    assert started, workflow_id
    assert completed, workflow_id
    return started, completed


async def test_runs_wait_for_a_stage_at_capacity_and_say_so(
    api_env: dict[str, str], temporal_env: WorkflowEnvironment, pg_pool: asyncpg.Pool
) -> None:
    """STAGE_CAPACITY_TEXT_GENERATION=1 and five runs: at most one text_generation at a time;
    the others show `waiting` (stage, since, a backlog count) in the status API meanwhile, and
    nothing once they run or have completed."""
    suffix = uuid.uuid4().hex[:8]
    env = {**api_env, **queue_env(f"wait-{suffix}", f"wait-{suffix}")}
    settings = make_settings(env, STAGE_CAPACITY_TEXT_GENERATION="1")
    users = [await insert_user(pg_pool) for _ in range(RUNS)]
    courses = {u: await insert_course(pg_pool, u, simulation=SIMULATION) for u in users}
    seen: dict[str, list[dict[str, Any]]] = {course: [] for course in courses.values()}
    async with workers_on(settings, temporal_env.client, pg_pool), running_app(settings) as app:
        for user, course in courses.items():
            response = await app.post(generation(course), headers=bearer(hs_token(user)))
            assert response.status_code == 202, response.text

        async def all_completed() -> list[dict[str, Any]]:
            bodies = await asyncio.gather(*(read(app, u, c) for u, c in courses.items()))
            for body in bodies:
                if body["waiting"] is not None:
                    seen[body["courseId"]].append(body["waiting"])
            assert [b["workflowStatus"] for b in bodies] == ["COMPLETED"] * RUNS
            return bodies

        finals = await eventually(all_completed, timeout=60, interval=0.2)
    assert [body["waiting"] for body in finals] == [None] * RUNS
    # Another stage may be caught in the moment between its scheduling and its start; only
    # text_generation keeps runs waiting.
    waits = {course: [w for w in found if w["stage"] == STAGE] for course, found in seen.items()}
    assert len([course for course, found in waits.items() if found]) >= RUNS - 1, seen
    for waiting in itertools.chain.from_iterable(waits.values()):
        assert datetime.fromisoformat(waiting["since"])
        assert isinstance(waiting["backlog"], int), waiting
        assert waiting["backlog"] >= 0
    intervals = sorted(
        [await stage_interval(temporal_env.client, b["workflowId"], b["runId"]) for b in finals]
    )
    for (_, ended), (began, _) in itertools.pairwise(intervals):
        assert began >= ended, intervals  # one slot: the next starts after the last completed


async def read(app: httpx.AsyncClient, user: str, course: str) -> dict[str, Any]:
    response = await app.get(generation(course), headers=bearer(hs_token(user)))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
