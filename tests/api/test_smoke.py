"""Quick end-to-end: a user starts a generation and reads it back."""

from __future__ import annotations

import asyncpg
import httpx

from tests.api.support import QUICK
from tests.factories import bearer, hs_token, insert_course, insert_user
from tests.helpers import eventually


async def test_start_then_status(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """A started course answers 202 and later reads back completed."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    response = await client.post(f"/api/v1/courses/{course}/generation", headers=headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "started"

    async def done() -> None:
        status = await client.get(f"/api/v1/courses/{course}/generation", headers=headers)
        assert status.status_code == 200, status.text
        assert status.json()["generationStatus"] == "completed", status.json()

    await eventually(done, timeout=30)
