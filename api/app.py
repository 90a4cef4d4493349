"""The FastAPI application factory and its lifespan (the API's one composition root)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

import heap
from api import handlers, metrics
from api.metrics import HttpMetricsMiddleware
from api.middleware import (
    BodyLimitMiddleware,
    ErrorMiddleware,
    RequestIdMiddleware,
    UntracedMiddleware,
    untraced,
)
from api.query_token import Gateway
from api.routes import compat, events, generation, health, me
from api.state import State, build_state
from db.migrate import SchemaBehind
from settings import Settings, load_settings

log = structlog.get_logger("api")

DESCRIPTION = """Start, follow and cancel course generations.

Authenticate with a Supabase access token (`Authorization: Bearer …`). Errors under `/api/v1`
are RFC 9457 `application/problem+json`; switch on `type`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the stores and the Temporal client are opened by the lifespan."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        try:
            state = await build_state(settings)
        except SchemaBehind as exc:
            print(str(exc), file=sys.stderr)
            log.error(str(exc))
            raise
        if settings.api.gc_freeze:
            heap.freeze_start_up_heap()
        log.info("api ready to serve", environment=settings.environment)
        try:
            yield {"api": state}
        finally:
            await state.aclose()

    production = settings.environment == "production"
    app = Gateway(  # FastAPI that keeps the stream's access_token out of logs and traces
        title="Course generation orchestrator",
        version=settings.version,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None if production else "/docs",
        redoc_url=None,
        # FastAPI traces requests itself once a tracer provider is installed (observability).
        telemetry={"exclude": untraced},
    )
    handlers.install(app)
    for module in (generation, events, me, compat, health, metrics):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(ErrorMiddleware)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID"],
            expose_headers=["X-Request-ID", "Location", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(UntracedMiddleware)
    return app
