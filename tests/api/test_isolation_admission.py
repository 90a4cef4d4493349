"""Users cannot reach each other's courses; admission outcomes map to their HTTP answers."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

import embedded
from admission import create_redis
from tests.api.support import QUICK, course_row, generation, running_app, wait_status
from tests.factories import (
    bearer,
    hs_token,
    insert_course,
    insert_user,
    make_settings,
    queue_env,
    write_epoch,
)
from tests.helpers import eventually
from worker import build_workers
from workflows.types import workflow_id_for


async def test_user_b_gets_404_and_a_is_untouched(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> None:
    """B's start, status and cancel of A's course are 404, and A's run keeps RUNNING."""
    a, b = await insert_user(pg_pool), await insert_user(pg_pool)
    course = await insert_course(pg_pool, a, simulation={"stage_seconds": 30})
    started = await client.post(generation(course), headers=bearer(hs_token(a)))
    assert started.status_code == 202
    before = await course_row(pg_pool, course)
    as_b = bearer(hs_token(b))
    answers = [
        await client.post(generation(course), headers=as_b),
        await client.get(generation(course), headers=as_b),
        await client.post(f"{generation(course)}/cancel", headers=as_b),
    ]
    assert [r.status_code for r in answers] == [404, 404, 404]
    assert {r.json()["detail"] for r in answers} == {"no such course"}
    after = await course_row(pg_pool, course)
    assert after["run_id"] == before["run_id"]
    handle = temporal_env.client.get_workflow_handle(
        started.json()["workflowId"], run_id=started.json()["runId"]
    )
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    b_usage = (await client.get("/api/v1/me/concurrency", headers=as_b)).json()
    assert b_usage["active"] == []
    await client.post(f"{generation(course)}/cancel", headers=bearer(hs_token(a)))


async def test_free_user_second_course_then_admitted_after_first_completes(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """FREE: a second course while the first runs is 429 concurrency-limit with Retry-After and
    the first in `active`; once the first completes, the second is admitted."""
    user = await insert_user(pg_pool)
    first = await insert_course(pg_pool, user, simulation={"stage_seconds": 0.5})
    second = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    started = await client.post(generation(first), headers=headers)
    assert started.status_code == 202
    refused = await client.post(generation(second), headers=headers)
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"] == "30"
    problem = refused.json()
    assert problem["type"] == "/problems/concurrency-limit"
    assert (problem["reason"], problem["tier"], problem["limit"]) == ("user_limit", "FREE", 1)
    assert [a["courseId"] for a in problem["active"]] == [first]
    assert problem["active"][0]["workflowId"] == started.json()["workflowId"]
    assert (await course_row(pg_pool, second))["generation_status"] is None
    repeat = await client.post(generation(first), headers=headers)
    assert (repeat.status_code, repeat.json()["status"]) == (200, "already_running")
    await wait_status(client, first, headers, "completed")

    async def admitted() -> None:
        response = await client.post(generation(second), headers=headers)
        assert response.status_code == 202, response.text

    await eventually(admitted, timeout=15)
    await wait_status(client, second, headers, "completed")


@pytest_asyncio.fixture
async def outage_app(
    api_env: dict[str, str],
    data_dir: Path,
    temporal_env: WorkflowEnvironment,
    pg_pool: asyncpg.Pool,
) -> AsyncIterator[tuple[httpx.AsyncClient, subprocess.Popen[bytes]]]:
    """App and worker on their own redis-server (which the test kills) and task queues."""
    port = embedded.free_port()
    proc = embedded.start_redis_server(data_dir / f"redis-{port}", port)
    suffix = uuid.uuid4().hex[:8]
    settings = make_settings(
        {**api_env, **queue_env(f"outage-{suffix}", api_env["REDIS_KEY_PREFIX"])},
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
    )
    redis = create_redis(settings.stores.redis_url or "")
    try:
        await write_epoch(redis, settings.stores.redis_key_prefix)
        async with AsyncExitStack() as stack:
            for worker in build_workers(temporal_env.client, settings, pg_pool, redis):
                await stack.enter_async_context(worker)
            app = await stack.enter_async_context(running_app(settings))
            yield app, proc
    finally:
        embedded.stop_process(proc)
        await redis.aclose()


async def test_redis_down_is_503_and_course_untouched(
    outage_app: tuple[httpx.AsyncClient, subprocess.Popen[bytes]], pg_pool: asyncpg.Pool
) -> None:
    """With Redis stopped, a start is 503 dependency-unavailable with Retry-After, the course is
    untouched, and readiness names redis."""
    app, proc = outage_app
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    embedded.stop_process(proc)
    response = await app.post(generation(course), headers=bearer(hs_token(user)))
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "/problems/dependency-unavailable"
    assert int(response.headers["retry-after"]) > 0
    row = await course_row(pg_pool, course)
    assert (row["generation_status"], row["run_id"], row["progress_seq"]) == (None, None, 0)
    ready = await app.get("/readyz")
    assert ready.status_code == 503
    assert any(item.startswith("redis") for item in ready.json()["failing"])
    usage = await app.get("/api/v1/me/concurrency", headers=bearer(hs_token(user)))
    assert usage.status_code == 503


async def test_a_user_at_the_limit_is_refused_without_a_run(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> None:
    """When the lease store shows the user at the limit, the gateway answers 429 itself: no
    workflow execution is created, and `concurrency_limit_hit` is recorded as the run would."""
    user = await insert_user(pg_pool)
    first = await insert_course(pg_pool, user, simulation={"stage_seconds": 30})
    second = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    assert (await client.post(generation(first), headers=headers)).status_code == 202
    refused = await client.post(generation(second), headers=headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["active"][0]["courseId"] == first
    handle = temporal_env.client.get_workflow_handle(workflow_id_for(second))
    with pytest.raises(RPCError) as missing:
        await handle.describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    metrics = await pg_pool.fetch(
        "SELECT metadata FROM system_metrics WHERE course_id = $1"
        " AND event_type = 'concurrency_limit_hit'",
        uuid.UUID(second),
    )
    assert [(m["metadata"]["source"], m["metadata"]["reason"]) for m in metrics] == [
        ("gateway", "user_limit")
    ]
    await client.post(f"{generation(first)}/cancel", headers=headers)
