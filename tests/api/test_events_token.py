"""The stream's `access_token` query parameter: accepted like the Authorization header, with the
same 401s, by the stream only, and written to no log line (the server's access log included)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
import pytest_asyncio

from settings import Settings
from telemetry import configure_logging
from tests.api.sse_support import Served, collect, events_path, served_app
from tests.api.support import generation
from tests.factories import JWT_SECRET, bearer, hs_token, insert_course, insert_user


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line of the test, the server's access log included, as the processes write
    them."""
    buffer = io.StringIO()
    configure_logging("info", "json", environment="test", stream=buffer)
    access = logging.getLogger("uvicorn.access")
    propagate = access.propagate  # a server started with access_log=False turned it off
    access.setLevel(logging.INFO)
    access.propagate = True
    yield buffer
    access.propagate = propagate
    logging.getLogger().handlers.clear()


@pytest_asyncio.fixture
async def logged(api_settings: Settings, running_workers: None) -> AsyncIterator[Served]:
    """A served app of this test's own, with uvicorn's access log on."""
    async with served_app(api_settings, access_log=True) as app:
        yield app


async def test_query_token_works_like_the_header_and_is_never_logged(
    logged: Served, pg_pool: asyncpg.Pool, log_lines: io.StringIO
) -> None:
    """A valid access_token opens the stream; the header's 401 cases are 401 as a parameter
    too, as are two tokens or a token in both places; no token reaches any log line."""
    user, other = await insert_user(pg_pool), await insert_user(pg_pool)
    course = await insert_course(pg_pool, user)
    good = hs_token(user)
    bad = {
        "garbage": "not-a-jwt",
        "expired": hs_token(user, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "wrong secret": hs_token(user, secret=JWT_SECRET + "x"),
        "not a user id": hs_token("someone"),
        "empty": "",
    }
    async with httpx.AsyncClient(base_url=logged.url, timeout=10) as http:
        (event,) = await collect(http, course, {}, limit=1, params={"access_token": good})
        assert event.seq == 0
        path = events_path(course)
        for name, token in bad.items():
            response = await http.get(path, params={"access_token": token})
            assert response.status_code == 401, name
            assert response.headers["www-authenticate"] == "Bearer"
        twice = await http.get(f"{path}?access_token={good}&access_token={good}")
        both = await http.get(path, params={"access_token": good}, headers=bearer(good))
        foreign = await http.get(path, params={"access_token": hs_token(other)})
        anonymous = await http.get(path, params={"access_token": hs_token(user, is_anonymous=True)})
        status_route = await http.get(generation(course), params={"access_token": good})
    assert (twice.status_code, both.status_code, foreign.status_code) == (401, 401, 404)
    assert anonymous.status_code == 403
    assert status_route.status_code == 401  # only the stream takes a token this way
    text = log_lines.getvalue()
    assert f"GET {path}" in text  # the access log was captured
    for token in [good, *[t for t in bad.values() if t]]:
        assert token not in text
    assert "access_token" not in text
