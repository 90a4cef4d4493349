"""Helpers for the API tests: a local JWKS server, the app behind a client, workers of one's
own, course reads."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

import embedded
from admission import create_redis
from api.app import create_app
from db.repository import CourseRepository
from settings import Settings
from tests.factories import write_epoch
from tests.helpers import eventually
from worker import build_workers

# The simulated stages of the API tests' courses: short, so started runs complete quickly.
QUICK = {"stage_seconds": 0.2}


class JwksServer:
    """A JWKS document served over HTTP on 127.0.0.1; `fetches` counts requests."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document, self.fetches, self.down = document, 0, False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", embedded.free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/auth/v1/.well-known/jwks.json"

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def with_lifespan_state(app: FastAPI, state: dict[str, Any]) -> Any:
    """The app as a server that supports lifespan state would call it (uvicorn copies it)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["state"] = dict(state)
        await app(scope, receive, send)

    return wrapped


@asynccontextmanager
async def running_app(
    settings: Settings, prepare: Callable[[FastAPI], None] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, behind an in-process httpx client; `prepare` may add
    routes to it first."""
    app = create_app(settings)
    if prepare is not None:
        prepare(app)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=with_lifespan_state(app, dict(state or {})))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


@asynccontextmanager
async def workers_on(
    settings: Settings,
    client: Client,
    pool: asyncpg.Pool,
    repository: CourseRepository | None = None,
) -> AsyncIterator[None]:
    """The real worker (orchestration + simulated stages) on `settings`' task queues, its
    key prefix given its epoch."""
    redis = create_redis(settings.stores.redis_url or "")
    try:
        await write_epoch(redis, settings.stores.redis_key_prefix)
        async with AsyncExitStack() as stack:
            for worker in build_workers(client, settings, pool, redis, repository):
                await stack.enter_async_context(worker)
            yield
    finally:
        await redis.aclose()


async def accepted_updates(client: Client, workflow_id: str, run_id: str) -> int:
    """How many updates the run's history accepted (a validator's refusal writes none)."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return sum(1 for event in history.events if event.event_type == accepted)


async def course_row(pool: asyncpg.Pool, course_id: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT generation_status, workflow_id, run_id, progress_seq, generation_progress"
        " FROM public.courses WHERE id = $1",
        uuid.UUID(course_id),
    )
    assert row is not None
    return row


def generation(course_id: str) -> str:
    return f"/api/v1/courses/{course_id}/generation"


async def wait_status(
    client: httpx.AsyncClient, course_id: str, headers: dict[str, str], *wanted: str
) -> dict[str, Any]:
    """Poll the status endpoint until `generationStatus` is one of `wanted`."""

    async def reached() -> dict[str, Any]:
        response = await client.get(generation(course_id), headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["generationStatus"] in wanted, body["generationStatus"]
        return body

    return await eventually(reached, timeout=30)
