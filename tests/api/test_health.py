"""Liveness, readiness and the start-up rules: a schema that is behind stops the app with one
line; unreachable stores do not stop it, readiness names them and `/api/v1` answers 503."""

from __future__ import annotations

import gc
import uuid

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

import embedded
from db.migrate import SchemaBehind
from tests.api.support import QUICK, generation, running_app, workers_on
from tests.factories import (
    bearer,
    hs_token,
    insert_course,
    insert_user,
    make_settings,
    queue_env,
)
from tests.helpers import eventually
from tests.workflows.support import running
from worker import stage_workers
from workflows.steps import STAGE_NAMES

SCHEMA_BEHIND = "schema is behind: run migrations (python -m db migrate)"
OTHER_STAGES = ",".join(stage for stage in STAGE_NAMES if stage != "text_generation")


async def test_healthz(client: httpx.AsyncClient) -> None:
    """Liveness answers 200."""
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_ready_with_worker(client: httpx.AsyncClient) -> None:
    """Readiness is 200 when the stores answer, the schema is current, the search attributes
    are listed and workers poll the workflow queue and every stage's queue."""
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"postgresql": "ok", "redis": "ok", "temporal": "ok"}


async def test_the_gateway_freezes_its_start_up_heap_unless_told_not_to(
    api_env: dict[str, str],
) -> None:
    """With API_GC_FREEZE (on by default) the lifespan leaves what start-up built to the
    collector's permanent generation (`heap`); with it off, nothing is frozen."""
    gc.unfreeze()
    try:
        async with running_app(make_settings(api_env, API_GC_FREEZE="true")) as app:
            assert gc.get_freeze_count() > 0
            assert (await app.get("/healthz")).status_code == 200
        gc.unfreeze()
        async with running_app(make_settings(api_env, API_GC_FREEZE="false")):
            assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()


async def test_readyz_names_missing_worker(api_env: dict[str, str]) -> None:
    """Without a worker on the task queues readiness is 503 naming the queue."""
    settings = make_settings(api_env, TEMPORAL_TASK_QUEUE=f"idle-{uuid.uuid4().hex}")
    async with running_app(settings) as app:
        response = await app.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == [
        f"temporal: no worker polls task queue {settings.temporal.task_queue}"
    ]


async def test_readyz_names_a_stage_queue_no_worker_polls(
    api_env: dict[str, str], temporal_env: WorkflowEnvironment, pg_pool: asyncpg.Pool
) -> None:
    """With every stage served but text_generation, readiness is 503 naming that stage's
    queue; once a worker of that stage alone polls it (another fleet), readiness is 200."""
    suffix = uuid.uuid4().hex[:8]
    env = {**api_env, **queue_env(f"ready-{suffix}", f"ready-{suffix}")}
    ours = make_settings(env, SIMULATED_STAGES=OTHER_STAGES)
    fleet = make_settings(env, SIMULATED_STAGES="text_generation")
    idle = ours.temporal.stage_queue("text_generation")
    async with workers_on(ours, temporal_env.client, pg_pool), running_app(ours) as app:

        async def readiness(code: int, *failing: str) -> None:
            response = await app.get("/readyz")
            assert response.status_code == code, response.text
            assert response.json().get("failing", []) == list(failing)

        await eventually(lambda: readiness(503, f"temporal: no worker polls task queue {idle}"))
        async with running(stage_workers(temporal_env.client, fleet)):
            await eventually(lambda: readiness(200))


async def test_start_refused_when_schema_behind(
    api_env: dict[str, str], empty_database: str
) -> None:
    """An app whose PostgreSQL answers with pending migrations refuses to start, saying so."""
    settings = make_settings(api_env, DATABASE_URL=empty_database)
    with pytest.raises(SchemaBehind) as raised:
        async with running_app(settings):
            pass
    assert str(raised.value) == SCHEMA_BEHIND


async def test_unreachable_stores_start_anyway(api_env: dict[str, str]) -> None:
    """With PostgreSQL, Redis and Temporal unreachable the app starts; readiness names all
    three and /api/v1 answers 503 with Retry-After."""
    dead = embedded.free_port()
    settings = make_settings(
        api_env,
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{dead}/postgres",
        REDIS_URL=f"redis://127.0.0.1:{dead}/0",
        TEMPORAL_ADDRESS=f"127.0.0.1:{dead}",
    )
    async with running_app(settings) as app:
        ready = await app.get("/readyz")
        user = str(uuid.uuid4())
        start = await app.post(generation(str(uuid.uuid4())), headers=bearer(hs_token(user)))
        legacy = await app.post(
            "/api/coursegen/generate",
            headers=bearer(hs_token(user)),
            json={"courseId": str(uuid.uuid4())},
        )
        health = await app.get("/healthz")
    assert ready.status_code == 503
    assert [item.split(":")[0] for item in ready.json()["failing"]] == [
        "postgresql",
        "redis",
        "temporal",
    ]
    assert start.status_code == 503
    assert start.json()["type"] == "/problems/dependency-unavailable"
    assert "retry-after" in start.headers
    assert legacy.status_code == 500
    assert legacy.json() == {
        "error": "Не удалось инициализировать генерацию курса. Попробуйте позже."
    }
    assert health.status_code == 200


async def test_temporal_unreachable_start_is_503(
    api_env: dict[str, str], pg_pool: asyncpg.Pool
) -> None:
    """With only Temporal unreachable, a start of an owned course is 503 naming temporal."""
    settings = make_settings(api_env, TEMPORAL_ADDRESS=f"127.0.0.1:{embedded.free_port()}")
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    async with running_app(settings) as app:
        response = await app.post(generation(course), headers=bearer(hs_token(user)))
    assert response.status_code == 503
    assert response.json()["detail"] == "temporal is unavailable"
