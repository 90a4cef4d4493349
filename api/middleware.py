"""Pure ASGI middleware: request ids bound into logs (and carried by the trace as baggage, so
the run's activities log it too), probes that make no spans, unhandled errors answered as
problems, and the 64 KiB body cap.

Order, outermost first: `UntracedMiddleware`, `HttpMetricsMiddleware`, `RequestIdMiddleware`,
CORS, `ErrorMiddleware`, `BodyLimitMiddleware`, then FastAPI's own exception handlers. An
unhandled error is rendered inside CORS and the request id, so its 500 carries both like any
other answer.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import baggage, context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from api.handlers import render
from api.problems import PayloadTooLarge
from telemetry import REQUEST_ID_BAGGAGE, bind_context

MAX_BODY_BYTES = 64 * 1024
# Probes and scrapes, every few seconds: counted in the metrics, never traced.
UNTRACED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
log = structlog.get_logger("api.access")


class RequestIdMiddleware(HttpMiddleware):
    """Echo a well-formed `X-Request-ID` (else mint a UUID), bind it into every log line."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        bind_context(request_id=request_id)
        token = context.attach(baggage.set_baggage(REQUEST_ID_BAGGAGE, request_id))
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            context.detach(token)


class UntracedMiddleware(HttpMiddleware):
    """Requests to `UNTRACED_PATHS` make no PostgreSQL or Redis spans (FastAPI's `exclude`
    already skips their server span), so readiness probes do not fill the traces."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] not in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        with suppress_instrumentation():
            await self.app(scope, receive, send)


def untraced(scope: MutableMapping[str, Any]) -> bool:
    """FastAPI's telemetry `exclude`: no server span for `UNTRACED_PATHS`."""
    return scope.get("path") in UNTRACED_PATHS


class ErrorMiddleware(HttpMiddleware):
    """Answer an error no handler took as a 500 problem without a stack trace (logged with it).
    An error after the response started cannot be answered; it is re-raised."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            await render(Request(scope, receive), exc)(scope, receive, send)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = str(value.decode("latin-1"))
            if REQUEST_ID.fullmatch(text):
                return text
            break
    return str(uuid.uuid4())


class BodyLimitMiddleware(HttpMiddleware):
    """Refuse request bodies over `limit` bytes with 413, before the app reads them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        super().__init__(app)
        self.limit = limit

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _declared_length(scope) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = PayloadTooLarge(f"request bodies are limited to {self.limit // 1024} KiB")
        response = render(Request(scope, receive), problem)
        await response(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending: list[Any] = list(messages)

    async def replayed() -> Message:
        if pending:
            message: Message = pending.pop(0)
            return message
        return await receive()

    return replayed
