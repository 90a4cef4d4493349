"""The exception handlers: whatever reaches the edge is answered as the problem it maps to.

`/api/v1` and the health routes answer RFC 9457 `application/problem+json`; `/api/coursegen/`
answers the old `{error, details?}` body (`api.legacy`). No stack trace or internal message
reaches a client.
"""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from admission import LeaseStoreUnavailable
from api import legacy
from api.problems import PROBLEM_MEDIA_TYPE, DependencyUnavailable, Problem, problem_from
from db.errors import DatabaseUnavailable

log = structlog.get_logger("api.handlers")


def render(request: Request, exc: BaseException) -> JSONResponse:
    problem = problem_from(exc)
    headers = dict(problem.headers)
    if problem.status == 405:
        headers["Allow"] = _allowed_methods(request)
    internal = type(problem) is Problem and problem.status >= 500
    if internal:
        log.error("unhandled error", exc_info=exc, path=request.url.path)
    elif isinstance(problem, DependencyUnavailable):
        log.warning("dependency unavailable", detail=problem.detail, error=type(exc).__name__)
    if request.url.path.startswith(legacy.PREFIX):
        status, body = legacy.body(problem, internal=internal)
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse(
        problem.body(request.url.path),
        status_code=problem.status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def install(app: FastAPI) -> None:
    """Register the one set of exception handlers. Any other error is rendered by
    `api.middleware.ErrorMiddleware`, inside CORS and the request id (a handler for `Exception`
    would answer outside them)."""
    for exc_type in (
        Problem,
        RequestValidationError,
        StarletteHTTPException,
        DatabaseUnavailable,
        LeaseStoreUnavailable,
    ):
        app.add_exception_handler(exc_type, _handler)


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    return render(request, exc)


def _allowed_methods(request: Request) -> str:
    methods: set[str] = set()
    scope = {**request.scope, "method": "GET"}
    for route in request.app.router.routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))
