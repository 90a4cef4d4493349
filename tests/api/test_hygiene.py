"""Request ids, the 64 KiB body cap, CORS, the start rate limit and the webhook URL rules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from tests.api.support import QUICK, generation, running_app, wait_status
from tests.factories import bearer, hs_token, insert_course, insert_user, make_settings


@pytest.mark.parametrize("incoming", ["abc-123", "a" * 128, "trace:1.2_3-x"])
async def test_well_formed_request_id_is_echoed(client: httpx.AsyncClient, incoming: str) -> None:
    """A well-formed X-Request-ID comes back unchanged."""
    response = await client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize("incoming", [b"", b"a" * 129, b"bad id", b"semi;colon", "ü".encode()])
async def test_malformed_request_id_is_replaced(client: httpx.AsyncClient, incoming: bytes) -> None:
    """A malformed or missing X-Request-ID is replaced by a fresh UUID (also on errors)."""
    response = await client.get(generation(str(uuid.uuid4())), headers={b"X-Request-ID": incoming})
    assert response.status_code == 401
    assert str(uuid.UUID(response.headers["x-request-id"])) == response.headers["x-request-id"]


async def test_missing_request_id_gets_one(client: httpx.AsyncClient) -> None:
    """Without X-Request-ID the answer carries a new UUID."""
    response = await client.get("/healthz")
    uuid.UUID(response.headers["x-request-id"])


async def test_body_over_64_kib_is_413(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """Bodies over 64 KiB are 413 payload-too-large, declared or streamed (chunked)."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = {**bearer(hs_token(user)), "Content-Type": "application/json"}
    big = b'{"webhookUrl": "https://x.example/' + b"a" * (65 * 1024) + b'"}'
    declared = await client.post(generation(course), headers=headers, content=big)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = await client.post(generation(course), headers=headers, content=chunks())
    legacy = await client.post("/api/coursegen/generate", headers=headers, content=big)
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["type"] == "/problems/payload-too-large"
        assert "x-request-id" in response.headers
    assert legacy.status_code == 413
    assert legacy.json() == {"error": "Payload too large"}


async def test_body_just_under_the_cap_is_read(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A 60 KiB body reaches validation (422 for its unknown field), not 413."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    response = await client.post(
        generation(course), headers=bearer(hs_token(user)), json={"pad": "a" * 60 * 1024}
    )
    assert response.status_code == 422


async def test_cors_allows_only_configured_origins(client: httpx.AsyncClient) -> None:
    """A preflight from a configured origin is allowed; another origin gets no CORS headers."""
    path = generation(str(uuid.uuid4()))
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = await client.options(path, headers={**preflight, "Origin": "https://app.example.com"})
    denied = await client.options(path, headers={**preflight, "Origin": "https://evil.example"})
    simple = await client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in denied.headers
    assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_start_rate_limit(api_env: dict[str, str], pg_pool: asyncpg.Pool) -> None:
    """Over START_RATE_LIMIT_PER_MINUTE start attempts a user gets 429 rate-limited with
    Retry-After; another user is not affected."""
    settings = make_settings(api_env, START_RATE_LIMIT_PER_MINUTE="2")
    user, other = await insert_user(pg_pool), await insert_user(pg_pool)
    missing = generation(str(uuid.uuid4()))
    async with running_app(settings) as app:
        answers = [
            (await app.post(missing, headers=bearer(hs_token(user)))).status_code for _ in range(2)
        ]
        limited = await app.post(missing, headers=bearer(hs_token(user)))
        legacy = await app.post(
            "/api/coursegen/generate",
            headers=bearer(hs_token(user)),
            json={"courseId": str(uuid.uuid4())},
        )
        others = await app.post(missing, headers=bearer(hs_token(other)))
    assert answers == [404, 404]
    assert limited.status_code == 429
    assert limited.json()["type"] == "/problems/rate-limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert legacy.status_code == 429
    assert others.status_code == 404


async def test_http_webhook_allowed_when_configured(
    api_env: dict[str, str], pg_pool: asyncpg.Pool, running_workers: None
) -> None:
    """With ALLOW_HTTP_WEBHOOKS=true an http webhookUrl is accepted on /api/v1."""
    settings = make_settings(api_env, ALLOW_HTTP_WEBHOOKS="true")
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    async with running_app(settings) as app:
        response = await app.post(
            generation(course), headers=headers, json={"webhookUrl": "http://lms.local/hook"}
        )
        assert response.status_code == 202, response.text
        await wait_status(app, course, headers, "completed")


async def test_request_id_is_bound_into_log_lines(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """Every log line written while serving a request carries its X-Request-ID."""
    import io
    import json
    import logging

    import structlog

    import telemetry

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_config = structlog.get_config()
    stream = io.StringIO()
    telemetry.configure_logging("info", "json", "test", "0", stream=stream)
    try:
        await client.get(generation(str(uuid.uuid4())), headers={"X-Request-ID": "trace-42"})
    finally:
        root.handlers[:], root.level = saved_handlers, saved_level
        structlog.configure(**saved_config)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    served = [line for line in lines if line.get("event") == "request"]
    assert served, lines
    assert all(line.get("request_id") == "trace-42" for line in served)
