"""Contract of `POST /api/v1/courses/{courseId}/generation`: every status code it documents."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from tests.api.support import QUICK, course_row, generation, running_app, wait_status
from tests.factories import bearer, hs_token, insert_course, insert_user, make_settings
from tests.helpers import eventually

PROBLEM = "application/problem+json"


async def test_new_run_is_202_with_location(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A start admits a new run: 202, Location, the start body, and the row already claimed."""
    user = await insert_user(pg_pool, tier="premium")
    course = await insert_course(pg_pool, user, simulation=QUICK)
    response = await client.post(generation(course), headers=bearer(hs_token(user)), json={})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == generation(course)
    body = response.json()
    assert body["courseId"] == course
    assert body["workflowId"] == f"course-generation-{course}"
    assert body["runId"]
    assert body["generationType"] == "STRUCTURE_ANALYSIS"
    assert body["tier"] == "PREMIUM"
    assert body["priority"] == {"key": 1, "weight": 10.0}
    assert body["status"] == "started"
    assert body["links"] == {
        "self": generation(course),
        "cancel": f"{generation(course)}/cancel",
        "events": f"{generation(course)}/events",
    }
    row = await course_row(pg_pool, course)
    assert row["run_id"] == body["runId"]


async def test_tier_from_app_metadata_wins(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """The JWT's app_metadata.tier is used before the profile row; user_metadata never."""
    user = await insert_user(pg_pool, tier="FREE")
    course = await insert_course(pg_pool, user, simulation=QUICK)
    token = hs_token(user, app_metadata={"tier": "basic"}, user_metadata={"tier": "PREMIUM"})
    response = await client.post(generation(course), headers=bearer(token))
    assert response.status_code == 202, response.text
    assert response.json()["tier"] == "BASIC"
    assert response.json()["priority"] == {"key": 3, "weight": 3.0}


async def test_same_running_course_is_200_same_run(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A second start of a running course answers 200 with the same run id."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 2})
    headers = bearer(hs_token(user))
    first = await client.post(generation(course), headers=headers)
    second = await client.post(generation(course), headers=headers)
    assert (first.status_code, second.status_code) == (202, 200), second.text
    assert second.json()["runId"] == first.json()["runId"]
    assert second.json()["status"] == "already_running"
    assert second.headers["location"] == generation(course)
    await client.post(f"{generation(course)}/cancel", headers=headers)


async def test_unauthenticated_is_401(client: httpx.AsyncClient) -> None:
    """Without a token the start is 401 with a Bearer challenge."""
    response = await client.post(generation(str(uuid.uuid4())))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_anonymous_is_403(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """An anonymous user cannot start, and the course is untouched."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    response = await client.post(
        generation(course), headers=bearer(hs_token(user, is_anonymous=True))
    )
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/forbidden"
    assert (await course_row(pg_pool, course))["run_id"] is None


async def test_unknown_course_is_404(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """A course that does not exist is 404 not-found (problem+json)."""
    user = await insert_user(pg_pool)
    response = await client.post(generation(str(uuid.uuid4())), headers=bearer(hs_token(user)))
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/not-found"


async def test_completed_course_needs_regenerate(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A completed course is 409 already-completed unless `regenerate: true` (then 202)."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK, status="completed")
    headers = bearer(hs_token(user))
    refused = await client.post(generation(course), headers=headers, json={})
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/already-completed"
    accepted = await client.post(generation(course), headers=headers, json={"regenerate": True})
    assert accepted.status_code == 202, accepted.text
    await wait_status(client, course, headers, "completed")


async def test_closing_run_is_409_with_retry_after(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A start that reaches a run still compensating is 409 closing with Retry-After: 5."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 30})
    await pg_pool.execute(
        "UPDATE public.courses SET generation_progress = generation_progress ||"
        ' \'{"simulation": {"stage_seconds": 30, "cleanup_seconds": 4}}\'::jsonb'
        " WHERE id = $1",
        uuid.UUID(course),
    )
    headers = bearer(hs_token(user))
    assert (await client.post(generation(course), headers=headers)).status_code == 202
    await wait_status(client, course, headers, "analyzing_task")
    assert (await client.post(f"{generation(course)}/cancel", headers=headers)).status_code == 202

    async def closing() -> httpx.Response:
        response = await client.post(generation(course), headers=headers)
        assert response.status_code == 409, response.text
        return response

    response = await eventually(closing, timeout=10)
    assert response.json()["type"] == "/problems/closing"
    assert response.headers["retry-after"] == "5"
    await wait_status(client, course, headers, "cancelled")


@pytest.mark.parametrize(
    "body",
    [
        {"unknown": 1},
        {"webhookUrl": "http://lms.example.com/hook"},
        {"webhookUrl": "ftp://lms.example.com/hook"},
        {"webhookUrl": "not a url"},
        {"regenerate": "yes"},
        {"webhook_url": "https://lms.example.com/hook"},
        [],
    ],
)
async def test_bad_body_is_422(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, body: object
) -> None:
    """Unknown fields, non-https webhooks and wrong types are 422 validation; nothing starts."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    response = await client.post(generation(course), headers=bearer(hs_token(user)), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/validation"
    assert (await course_row(pg_pool, course))["run_id"] is None


async def test_malformed_json_and_bad_id_are_422(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """Malformed JSON and a non-UUID course id are 422, not 400 or 500."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = {**bearer(hs_token(user)), "Content-Type": "application/json"}
    broken = await client.post(generation(course), headers=headers, content=b"{not json")
    bad_id = await client.post(generation("not-a-uuid"), headers=headers)
    non_utf8 = await client.post(generation(course), headers=headers, content=b'{"a": "\xff"}')
    assert (broken.status_code, bad_id.status_code, non_utf8.status_code) == (422, 422, 422)


async def test_https_webhook_is_accepted(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """An https webhookUrl is accepted and the run starts."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    response = await client.post(
        generation(course),
        headers=bearer(hs_token(user)),
        json={"webhookUrl": "https://lms.example.com/hook"},
    )
    assert response.status_code == 202, response.text
    await wait_status(client, course, bearer(hs_token(user)), "completed")


async def test_start_timeout_is_503_and_retry_attaches(
    api_env: dict[str, str], pg_pool: asyncpg.Pool
) -> None:
    """When the admission update does not answer within START_TIMEOUT_SECONDS (no worker), the
    start is 503 saying the run may still start, and the retry attaches to the same run."""
    from api.problems import MAY_STILL_START

    settings = make_settings(
        api_env, TEMPORAL_TASK_QUEUE=f"idle-{uuid.uuid4().hex}", START_TIMEOUT_SECONDS="1"
    )
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    async with running_app(settings) as app:
        first = await app.post(generation(course), headers=bearer(hs_token(user)))
        second = await app.post(generation(course), headers=bearer(hs_token(user)))
    for response in (first, second):
        assert response.status_code == 503, response.text
        assert response.json()["detail"] == MAY_STILL_START
        assert "retry-after" in response.headers
    assert (await course_row(pg_pool, course))["run_id"] is None
