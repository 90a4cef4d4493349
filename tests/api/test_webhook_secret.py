"""`/api/v1/me/webhook-secret`: the caller's own signing secret, never cached."""

from __future__ import annotations

import asyncpg
import httpx

from settings import Settings
from tests.factories import bearer, hs_token, insert_user
from webhooks.signing import user_secret


async def test_each_user_reads_their_own_secret(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    """The answer is the caller's derived `whsec_` secret; another user's differs."""
    alice, bob = await insert_user(pg_pool), await insert_user(pg_pool)
    first = await client.get("/api/v1/me/webhook-secret", headers=bearer(hs_token(alice)))
    second = await client.get("/api/v1/me/webhook-secret", headers=bearer(hs_token(bob)))
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    assert first.json() == {"secret": user_secret(api_settings.webhook.secret, alice)}
    assert first.json()["secret"].startswith("whsec_")
    assert second.json()["secret"] != first.json()["secret"]


async def test_the_secret_needs_a_signed_in_user(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """No token is 401; an anonymous user is 403."""
    user = await insert_user(pg_pool)
    missing = await client.get("/api/v1/me/webhook-secret")
    anonymous = await client.get(
        "/api/v1/me/webhook-secret", headers=bearer(hs_token(user, is_anonymous=True))
    )
    assert (missing.status_code, anonymous.status_code) == (401, 403)
