"""The base of the gateway's pure ASGI middleware: HTTP requests go to `http`, everything else
(lifespan, websockets) passes straight through to the wrapped app."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request (`scope["type"] == "http"`)."""
        await self.app(scope, receive, send)
