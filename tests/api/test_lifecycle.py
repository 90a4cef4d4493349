"""The run lifecycle at the gateway: completion wins over a cancel, duplicate starts are bounded
(one update-with-start in flight per course, repeats past the validator's limit answered as
repeats), and a refused admission names what it could not reach."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from db.errors import DatabaseUnavailable
from db.repository import CourseRepository
from settings import Settings
from tests.api.support import (
    QUICK,
    accepted_updates,
    course_row,
    generation,
    running_app,
    wait_status,
    workers_on,
)
from tests.factories import bearer, hs_token, insert_course, insert_user, make_settings, queue_env
from tests.helpers import eventually
from workflows.types import workflow_id_for

# A course's statuses from the second step to `completed`, as the trigger allows them.
TO_COMPLETED = ["generating_structure", "generating_content", "finalizing", "completed"]


def _own_queues(api_env: dict[str, str], **values: str) -> Settings:
    """The API tests' settings on task queues no worker polls until the test starts one."""
    queues = queue_env(f"own-{uuid.uuid4().hex[:8]}", api_env["REDIS_KEY_PREFIX"])
    return make_settings({**api_env, **queues}, **values)


async def test_cancel_after_completion_is_409_while_the_run_is_open(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> None:
    """A course whose row says `completed` is 409 not-running though its run is still RUNNING
    (finishing its last steps): no cancel reaches the run, the row stays completed."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 30})
    headers = bearer(hs_token(user))
    started = (await client.post(generation(course), headers=headers)).json()
    await wait_status(client, course, headers, "analyzing_task")
    for status in TO_COMPLETED:
        await pg_pool.execute(
            "UPDATE public.courses SET generation_status = $2::public.generation_status"
            " WHERE id = $1",
            uuid.UUID(course),
            status,
        )
    handle = temporal_env.client.get_workflow_handle(started["workflowId"], run_id=started["runId"])
    response = await client.post(f"{generation(course)}/cancel", headers=headers)
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/problems/not-running"
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert (await course_row(pg_pool, course))["generation_status"] == "completed"
    await handle.cancel()


async def _start_all(app: httpx.AsyncClient, course: str, user: str, n: int) -> list[Any]:
    return [
        asyncio.create_task(app.post(generation(course), headers=bearer(hs_token(user))))
        for _ in range(n)
    ]


async def _wait_started(env: WorkflowEnvironment, course: str) -> None:
    async def exists() -> None:
        try:
            await env.client.get_workflow_handle(workflow_id_for(course)).describe()
        except RPCError as exc:
            raise AssertionError(f"no run yet: {exc}") from exc

    await eventually(exists, timeout=10)


async def test_concurrent_starts_share_one_update_with_start(
    api_env: dict[str, str], pg_pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> None:
    """Five concurrent starts of one course in one gateway make one update-with-start: one 202,
    four 200 `already_running` with the same ids, one update in the run's history."""
    settings = _own_queues(api_env, START_TIMEOUT_SECONDS="30")
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    async with running_app(settings) as app:
        calls = await _start_all(app, course, user, 5)
        await _wait_started(temporal_env, course)
        await asyncio.sleep(0.5)  # every request has joined the update waiting for a worker
        async with workers_on(settings, temporal_env.client, pg_pool):
            answers = await asyncio.gather(*calls)
            await wait_status(app, course, bearer(hs_token(user)), "completed")
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 202]
    bodies = [a.json() for a in answers]
    assert len({(b["workflowId"], b["runId"]) for b in bodies}) == 1
    assert sorted(b["status"] for b in bodies) == ["already_running"] * 4 + ["started"]
    run_id = bodies[0]["runId"]
    assert await accepted_updates(temporal_env.client, workflow_id_for(course), run_id) == 1


async def test_a_cancelled_start_does_not_cancel_the_shared_one(
    api_env: dict[str, str], pg_pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> None:
    """The request whose update-with-start the others joined goes away: the update goes on, and
    the others answer 200 with the run its token started."""
    settings = _own_queues(api_env, START_TIMEOUT_SECONDS="30")
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    async with running_app(settings) as app:
        [leader] = await _start_all(app, course, user, 1)
        await _wait_started(temporal_env, course)
        followers = await _start_all(app, course, user, 2)
        await asyncio.sleep(0.5)
        leader.cancel()
        async with workers_on(settings, temporal_env.client, pg_pool):
            answers = await asyncio.gather(*followers)
            await wait_status(app, course, bearer(hs_token(user)), "completed")
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    run_id = answers[0].json()["runId"]
    assert {a.json()["runId"] for a in answers} == {run_id}
    assert (await course_row(pg_pool, course))["run_id"] == run_id
    assert await accepted_updates(temporal_env.client, workflow_id_for(course), run_id) == 1


async def test_repeats_past_the_validator_limit_answer_200(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> None:
    """Repeats of a running course past the `admission` validator's limit are refused without
    history (`DuplicateStart`); the gateway answers each as the repeat it is: 200, same run."""
    from workflows.course_generation import REPEATS_ANSWERED

    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 30})
    headers = bearer(hs_token(user))
    started = await client.post(generation(course), headers=headers)
    assert started.status_code == 202, started.text
    run_id = started.json()["runId"]
    for _ in range(REPEATS_ANSWERED + 3):
        repeat = await client.post(generation(course), headers=headers)
        assert repeat.status_code == 200, repeat.text
        assert (repeat.json()["runId"], repeat.json()["status"]) == (run_id, "already_running")
    workflow_id = workflow_id_for(course)
    assert await accepted_updates(temporal_env.client, workflow_id, run_id) == 1 + REPEATS_ANSWERED
    await client.post(f"{generation(course)}/cancel", headers=headers)
    await wait_status(client, course, headers, "cancelled")


class ClaimRefused(CourseRepository):
    """A repository whose course claim always finds PostgreSQL unreachable (retryable)."""

    async def begin_generation(self, *args: Any, **kw: Any) -> Any:
        raise DatabaseUnavailable("connection refused (injected)")


async def test_claim_failure_is_503_naming_postgresql_too(
    api_env: dict[str, str], pg_pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> None:
    """A run whose claim cannot reach PostgreSQL ends `unavailable` once the claim's 5 s are
    spent, though Redis answered: the start is 503 with Retry-After naming postgresql."""
    settings = _own_queues(api_env, START_TIMEOUT_SECONDS="30")
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    worker = workers_on(settings, temporal_env.client, pg_pool, ClaimRefused(pg_pool))
    async with worker, running_app(settings) as app:
        response = await app.post(generation(course), headers=bearer(hs_token(user)))
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "/problems/dependency-unavailable"
    assert response.json()["detail"].startswith("postgresql is unavailable")
    assert "retry-after" in response.headers
    assert (await course_row(pg_pool, course))["run_id"] is None
