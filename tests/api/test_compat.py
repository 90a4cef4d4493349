"""`POST /api/coursegen/generate`: the bodies and texts the old frontend relies on, unchanged."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from tests.api.support import QUICK, course_row, generation
from tests.factories import bearer, hs_token, insert_course, insert_user

OLD = "/api/coursegen/generate"


async def test_start_and_same_job_again(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """A start answers the old 200 body; a second start of the running course the same jobId."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 2})
    headers = bearer(hs_token(user))
    first = await client.post(OLD, headers=headers, json={"courseId": course})
    again = await client.post(OLD, headers=headers, json={"courseId": course, "webhookUrl": None})
    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert first.json() == {
        "success": True,
        "jobId": f"course-generation-{course}",
        "message": "Генерация курса инициализирована",
        "courseId": course,
    }
    assert again.json()["jobId"] == first.json()["jobId"]
    await client.post(f"{generation(course)}/cancel", headers=headers)


async def test_regenerates_a_completed_course(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """The old endpoint starts a completed course again; http webhooks keep the uri rule."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK, status="completed")
    response = await client.post(
        OLD,
        headers=bearer(hs_token(user)),
        json={"courseId": course, "webhookUrl": "http://lms.example.com/hook"},
    )
    assert response.status_code == 200, response.text
    assert (await course_row(pg_pool, course))["run_id"] is not None


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", "Invalid request body"),
        (b"{}", "Invalid request body"),
        (b'{"courseId": "00000000-0000-0000-0000-000000000000", "x": 1}', "Invalid request body"),
        (b'{"courseId": "00000000-0000-0000-0000-000000000000", "webhookUrl": "nope"}',
         "Invalid request body"),
        (b'{"courseId": "00000000-0000-0000-0000-000000000000",'
         b' "webhookUrl": "https://x.example/\\n\\n# Owned"}', "Invalid request body"),
        (b'{"courseId": 5}', "Invalid courseId format"),
        (b'{"courseId": "abc"}', "Invalid courseId format"),
    ],
)  # fmt: skip
async def test_bad_body_is_400(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, content: bytes, error: str
) -> None:
    """Missing, malformed or extra fields are 400 with the old `{error, details}` body."""
    user = await insert_user(pg_pool)
    response = await client.post(
        OLD,
        headers={**bearer(hs_token(user)), "Content-Type": "application/json"},
        content=content,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    if error == "Invalid courseId format":
        assert response.json()["details"]["field"] == "courseId"
        assert response.json()["details"]["expected"] == "UUID"


async def test_body_checked_before_auth(client: httpx.AsyncClient) -> None:
    """As in the old route, a bad body is 400 even without a token."""
    response = await client.post(OLD, json={"courseId": "abc"})
    assert response.status_code == 400


async def test_other_users_course_is_403(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """Another user's course is 403 with the old text (the old contract), nothing started."""
    owner, other = await insert_user(pg_pool), await insert_user(pg_pool)
    course = await insert_course(pg_pool, owner, simulation=QUICK)
    response = await client.post(OLD, headers=bearer(hs_token(other)), json={"courseId": course})
    assert response.status_code == 403
    assert response.json() == {"error": "Forbidden: You do not have access to this course"}
    assert (await course_row(pg_pool, course))["run_id"] is None


async def test_unknown_course_is_404(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """An unknown course is 404 `Course not found`."""
    user = await insert_user(pg_pool)
    response = await client.post(
        OLD, headers=bearer(hs_token(user)), json={"courseId": str(uuid.uuid4())}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "Course not found"}


async def test_concurrency_limit_is_429(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """A FREE user's second course is 429 with the old message and details."""
    user = await insert_user(pg_pool)
    first, second = (
        await insert_course(pg_pool, user, simulation={"stage_seconds": 30}),
        await insert_course(pg_pool, user, simulation=QUICK),
    )
    headers = bearer(hs_token(user))
    assert (await client.post(OLD, headers=headers, json={"courseId": first})).status_code == 200
    response = await client.post(OLD, headers=headers, json={"courseId": second})
    assert response.status_code == 429
    assert response.json() == {
        "error": "Too many concurrent jobs. FREE tier allows 1 concurrent course generation.",
        "details": {"tier": "FREE", "user_limit": 1, "current_user_jobs": 1},
    }
    await client.post(f"{generation(first)}/cancel", headers=headers)
