"""A webhook receiver for tests: a tiny HTTP/1.1 server on 127.0.0.1 that records what it is
sent and answers 500 to the first `fail_first` requests (then 204), or never answers (`hang`).

Also `LoopbackOnly`: the dispatcher's transport in tests, which never connects anywhere but
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from standardwebhooks.webhooks import Webhook

from db.outbox import Outbox
from webhooks.addresses import AddressGuard
from webhooks.dispatcher import Dispatcher, DispatchPolicy
from webhooks.sender import Sender


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int | None  # None: left hanging


class Receiver:
    def __init__(self, fail_first: int = 0, hang: bool = False) -> None:
        self.fail_first, self.hang = fail_first, hang
        self.received: list[Received] = []
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._closing.set()  # hanging answers end now
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """The payload of each event answered 204, deduplicated by webhook-id (delivery is at
        least once) in the order first received, each signature checked with `secret`."""
        hook = Webhook(secret)
        return [hook.verify(r.body, r.headers) for r in self.first_deliveries()]

    def first_deliveries(self) -> list[Received]:
        """The first request answered 204 of each webhook-id, in arrival order."""
        seen: set[str] = set()
        first: list[Received] = []
        for request in self.received:
            event_id = request.headers["webhook-id"]
            if request.status == 204 and event_id not in seen:
                seen.add(event_id)
                first.append(request)
        return first

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            headers = await _headers(reader)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if self.hang:
                self.received.append(Received(headers, body, None))
                await self._closing.wait()
                writer.close()
                return
            status = 500 if len(self.received) < self.fail_first else 204
            self.received.append(Received(headers, body, status))
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
            await writer.drain()
        writer.close()


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}


class LoopbackOnly(httpx.AsyncBaseTransport):
    """A real transport that refuses (and records) any request beyond 127.0.0.1: tests assert
    `beyond` stays empty."""

    def __init__(self) -> None:
        self.beyond: list[str] = []
        self._real = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "127.0.0.1":
            self.beyond.append(str(request.url))
            raise httpx.ConnectError("not loopback", request=request)
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


MASTER_SECRET = "webhook-master-secret-of-the-tests"
FAST = {"first_backoff_seconds": 0.05, "idle_seconds": 0.2}


async def no_dns(host: str, port: int) -> list[str]:
    """Tests send webhooks to 127.0.0.1 only; any name lookup fails (and so is retried)."""
    raise OSError(f"no DNS in tests ({host})")


def dispatcher_for(
    pool: asyncpg.Pool,
    transport: LoopbackOnly,
    attempts: list[str] | None = None,
    **policy: Any,
) -> Dispatcher:
    """A dispatcher that may reach 127.0.0.1 over http (allow-listed), backs off from 50 ms and
    polls every 200 ms unless `policy` says otherwise; each attempt's result is appended to
    `attempts`."""
    guard = AddressGuard(allow_http=True, allow_hosts=["127.0.0.1"], resolver=no_dns)
    sender = Sender(guard, transport)
    count = (attempts if attempts is not None else []).append
    policies = DispatchPolicy(**{**FAST, **policy})
    return Dispatcher(Outbox(pool), sender, MASTER_SECRET, policies, count)


async def settle_leftovers(pool: asyncpg.Pool) -> None:
    """Mark every pending event failed: before a test, earlier tests' events are not its to
    deliver; after it, its own are nobody's (worker processes of later tests would try)."""
    await pool.execute(
        "UPDATE public.webhook_outbox SET status = 'failed', last_error = 'left by a test'"
        " WHERE status = 'pending'"
    )
