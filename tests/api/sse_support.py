"""Helpers for the progress-stream tests: the app served by uvicorn on a free port (streams need
a real server: the in-process ASGI transport buffers whole responses), and an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

import embedded
from api.app import create_app
from api.state import ApiState
from settings import Settings


@dataclass
class Served:
    url: str
    server: uvicorn.Server

    @property
    def state(self) -> ApiState:
        state: ApiState = self.server.lifespan.state["api"]
        return state


@contextlib.asynccontextmanager
async def served_app(settings: Settings, *, access_log: bool = False) -> AsyncIterator[Served]:
    """The app under uvicorn on 127.0.0.1 (lifespan run), stopped on exit."""
    port = embedded.free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_config=None,
        access_log=access_log,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        await task


@dataclass(frozen=True)
class Event:
    id: str | None
    event: str | None
    data: dict[str, Any]

    @property
    def seq(self) -> int:
        return int(self.id or -1)


async def read_events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of a text/event-stream response, comments (keep-alives) skipped."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield Event(fields.get("id"), fields.get("event"), json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def events_path(course_id: str) -> str:
    return f"/api/v1/courses/{course_id}/generation/events"


async def collect(
    http: httpx.AsyncClient,
    course_id: str,
    headers: dict[str, str],
    *,
    limit: int | None = None,
    params: dict[str, str] | None = None,
) -> list[Event]:
    """Open the stream and read it to its end, or until `limit` events."""
    got: list[Event] = []
    async with http.stream("GET", events_path(course_id), headers=headers, params=params) as r:
        assert r.status_code == 200, await r.aread()
        async for event in read_events(r):
            got.append(event)
            if limit is not None and len(got) >= limit:
                break
    return got
