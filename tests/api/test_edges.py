"""Gateway edges: bodies nested deeper than a parser recurses, an unhandled error's answer, the
caller's webhook URL in the Web UI, and Temporal unreachable (the outage costs no one a wait)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import embedded
import temporal_connect
from api import temporal
from settings import Settings
from tests.api.support import QUICK, generation, running_app, wait_status
from tests.factories import bearer, hs_token, insert_course, insert_user, make_settings

OLD = "/api/coursegen/generate"
ORIGIN = "https://app.example.com"
DEEP = [b"[" * 5000, b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000]


@pytest.mark.parametrize("content", DEEP, ids=["open", "closed", "objects"])
async def test_deep_body_on_the_old_api_is_400(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, content: bytes
) -> None:
    """5,000 nested brackets on the old endpoint are its 400 `Invalid request body`, not 500."""
    user = await insert_user(pg_pool)
    headers = {**bearer(hs_token(user)), "Content-Type": "application/json"}
    response = await client.post(OLD, headers=headers, content=content)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "Invalid request body",
        "details": {"reason": "invalid JSON"},
    }


@pytest.mark.parametrize("content", DEEP, ids=["open", "closed", "objects"])
@pytest.mark.parametrize("suffix", ["", "/cancel"], ids=["start", "cancel"])
async def test_deep_body_on_v1_is_422(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, content: bytes, suffix: str
) -> None:
    """The same bodies on /api/v1 are 422 validation problems; nothing starts."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = {**bearer(hs_token(user)), "Content-Type": "application/json"}
    response = await client.post(generation(course) + suffix, headers=headers, content=content)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/validation"


def _failing_routes(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("internal detail that must not leak")

    app.add_api_route("/api/v1/boom", boom, methods=["GET"])
    app.add_api_route("/api/coursegen/boom", boom, methods=["GET"])


async def test_unhandled_error_has_request_id_and_cors(api_settings: Settings) -> None:
    """A 500 carries X-Request-ID and the CORS headers of an allowed origin like any answer;
    its body is the internal problem (old API: its `error`) without the error's text."""
    headers = {"Origin": ORIGIN, "X-Request-ID": "trace-500"}
    async with running_app(api_settings, _failing_routes) as app:
        v1 = await app.get("/api/v1/boom", headers=headers)
        legacy = await app.get("/api/coursegen/boom", headers=headers)
    for response in (v1, legacy):
        assert response.status_code == 500
        assert response.headers["x-request-id"] == "trace-500"
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
        assert "internal detail" not in response.text
        assert "Traceback" not in response.text
    assert v1.headers["content-type"] == "application/problem+json"
    assert v1.json() == {
        "type": "/problems/internal",
        "title": "Internal server error",
        "status": 500,
        "detail": "Internal server error",
        "instance": "/api/v1/boom",
    }
    assert legacy.json() == {"error": "Internal server error"}


async def test_webhook_url_markdown_is_not_rendered_in_the_web_ui(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, temporal_env: WorkflowEnvironment
) -> None:
    """A webhookUrl holding markdown (and a backtick) shows in the run's Web UI details as one
    inline code span holding the URL as given."""
    url = "https://lms.example.com/hook?q=**bold**[x](https://evil.example)<b>`tick`"
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    started = await client.post(generation(course), headers=headers, json={"webhookUrl": url})
    assert started.status_code == 202, started.text
    handle = temporal_env.client.get_workflow_handle(
        started.json()["workflowId"], run_id=started.json()["runId"]
    )
    details = await (await handle.describe()).static_details()
    assert details is not None
    assert f"- **Webhook:** `` {url} ``" in details.splitlines()
    await wait_status(client, course, headers, "completed")


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The times at which the gateway tries to connect to Temporal."""
    calls: list[float] = []
    connect = temporal_connect.connect

    async def counted(*args: Any, **kwargs: Any) -> Client:
        calls.append(time.monotonic())
        return await connect(*args, **kwargs)

    monkeypatch.setattr(temporal_connect, "connect", counted)
    return calls


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An address that accepts TCP connections and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield f"127.0.0.1:{listener.getsockname()[1]}"


async def _courses_with_runs(pool: asyncpg.Pool, user: str, n: int) -> list[str]:
    courses = [await insert_course(pool, user, simulation=QUICK) for _ in range(n)]
    for course in courses:
        await pool.execute(
            "UPDATE public.courses SET workflow_id = $2, run_id = $3 WHERE id = $1",
            uuid.UUID(course),
            f"course-generation-{course}",
            str(uuid.uuid4()),
        )
    return courses


async def _read_all(app: httpx.AsyncClient, courses: list[str], user: str) -> float:
    """Read every course's status at once; all are 503 with Retry-After; the seconds taken."""
    started = time.monotonic()
    answers = await asyncio.gather(
        *(app.get(generation(c), headers=bearer(hs_token(user))) for c in courses)
    )
    took = time.monotonic() - started
    for response in answers:
        assert response.status_code == 503, response.text
        assert response.json()["detail"] == "temporal is unavailable"
        assert int(response.headers["retry-after"]) > 0
    return took


async def test_temporal_refusing_is_503_at_once_with_one_connect(
    api_env: dict[str, str], pg_pool: asyncpg.Pool, connects: list[float]
) -> None:
    """With Temporal's port closed, 20 concurrent status reads are all 503 within 1.5 s, after
    one connect attempt between them."""
    settings = make_settings(api_env, TEMPORAL_ADDRESS=f"127.0.0.1:{embedded.free_port()}")
    user = await insert_user(pg_pool)
    courses = await _courses_with_runs(pg_pool, user, 20)
    async with running_app(settings) as app:
        assert await _read_all(app, courses, user) < 1.5
    assert len(connects) == 1


async def test_temporal_not_answering_costs_no_wait(
    api_env: dict[str, str],
    pg_pool: asyncpg.Pool,
    connects: list[float],
    black_hole: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With Temporal accepting connections but never answering, once the first connect has
    failed, 20 concurrent status reads are 503 within 1 s, and again when the failure is no
    longer fresh (the reads wait at most OUTAGE_WAIT_SECONDS for the one new connect)."""
    monkeypatch.setattr(temporal, "CONNECT_TIMEOUT_SECONDS", 1.0)
    settings = make_settings(api_env, TEMPORAL_ADDRESS=black_hole)
    user = await insert_user(pg_pool)
    courses = await _courses_with_runs(pg_pool, user, 20)
    async with running_app(settings) as app:
        await _read_all(app, courses[:1], user)
        assert await _read_all(app, courses, user) < 1.0
        await asyncio.sleep(temporal.FAILURE_CACHE_SECONDS)
        assert await _read_all(app, courses, user) < 1.0
    assert len(connects) == 2
