"""RFC 9457 problems: the error types the gateway answers with, mapped in this one place.

Routes and dependencies raise a `Problem` subclass (or let a store error propagate); the
handlers below render it as `application/problem+json` under `/api/v1`, and as the old
frontend's `{error, details?}` body under `/api/coursegen`. No stack trace or internal message
reaches a client.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from activities.leases import LeaseStoreUnavailable
from db.errors import DatabaseUnavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
LEGACY_PREFIX = "/api/coursegen/"
DEPENDENCY_RETRY_AFTER_SECONDS = 5

log = structlog.get_logger("api.problems")


class Problem(Exception):
    """An expected failure with its HTTP status, problem `type` slug and title."""

    status: int = 500
    slug: str = "internal"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extensions = extensions

    def body(self, instance: str) -> dict[str, Any]:
        return {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            **self.extensions,
        }


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str = "missing or invalid bearer token") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class NotYours(NotFound):
    """Another user's course: 404 on /api/v1 (existence does not leak), 403 on the old API."""


class ValidationProblem(Problem):
    status, slug, title = 422, "validation", "Invalid request"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class NotRunning(Problem):
    status, slug, title = 409, "not-running", "No generation is running"


class AlreadyCompleted(Problem):
    status, slug, title = 409, "already-completed", "Generation already completed"


class Closing(Problem):
    status, slug, title = 409, "closing", "The previous run is closing"

    def __init__(self, detail: str = "the previous run is compensating; retry shortly") -> None:
        super().__init__(detail, headers={"Retry-After": "5"})


class ConcurrencyLimit(Problem):
    status, slug, title = 429, "concurrency-limit", "Concurrency limit reached"


class RateLimited(Problem):
    status, slug, title = 429, "rate-limited", "Too many start attempts"


class LegacyBadRequest(ValidationProblem):
    """A 400 of the old endpoint, with its own `error` text and `details`."""


class DependencyUnavailable(Problem):
    status, slug, title = 503, "dependency-unavailable", "A dependency is unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(DEPENDENCY_RETRY_AFTER_SECONDS)})


def problem_from(exc: BaseException) -> Problem:
    """Map any exception that reaches the edge to the problem a client sees."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, DatabaseUnavailable):
        return DependencyUnavailable("postgresql is unavailable")
    if isinstance(exc, LeaseStoreUnavailable):
        return DependencyUnavailable("redis is unavailable")
    if isinstance(exc, RequestValidationError):
        return ValidationProblem("the request is invalid", errors=_safe_errors(exc))
    if isinstance(exc, StarletteHTTPException):
        return _from_http(exc)
    return Problem()


def _from_http(exc: StarletteHTTPException) -> Problem:
    if exc.status_code == 404:
        return NotFound("no such resource")
    if exc.status_code == 413:
        return PayloadTooLarge("request bodies are limited to 64 KiB")
    if exc.status_code in (400, 422):
        return ValidationProblem("the request body could not be parsed")
    generic = Problem(str(exc.detail), headers=dict(exc.headers or {}))
    generic.status, generic.slug, generic.title = exc.status_code, "http", str(exc.detail)
    return generic


def _safe_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Validation errors without the offending input (it may be large or sensitive)."""
    return [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
        for err in exc.errors()[:20]
    ]


LEGACY_FAILED = "Не удалось инициализировать генерацию курса. Попробуйте позже."
LEGACY_TEXTS: dict[type[Problem], tuple[int, str]] = {
    Unauthorized: (401, "Unauthorized: Invalid or missing authentication token"),
    NotYours: (403, "Forbidden: You do not have access to this course"),
    NotFound: (404, "Course not found"),
    ValidationProblem: (400, "Invalid request body"),
    RateLimited: (429, "Too many requests. Please try again later."),
    PayloadTooLarge: (413, "Payload too large"),
}


def legacy_body(problem: Problem, *, internal: bool = False) -> tuple[int, dict[str, Any]]:
    """The old frontend's `{error, details?}` body (original-spec-digest §7.1) for a problem."""
    if isinstance(problem, LegacyBadRequest):
        return 400, {"error": problem.detail, "details": problem.extensions}
    if isinstance(problem, ConcurrencyLimit):
        return 429, _legacy_limit(problem.extensions)
    if isinstance(problem, Forbidden):
        return 403, {"error": f"Forbidden: {problem.detail}"}
    for kind, (status, text) in LEGACY_TEXTS.items():
        if type(problem) is kind:
            return status, {"error": text}
    if problem.status < 500 and problem.slug == "http":
        return problem.status, {"error": problem.title}
    return 500, {"error": "Internal server error" if internal else LEGACY_FAILED}


def _legacy_limit(ext: dict[str, Any]) -> dict[str, Any]:
    tier, limit = ext.get("tier"), ext.get("limit")
    details = {"tier": tier, "user_limit": limit, "current_user_jobs": len(ext.get("active", []))}
    if ext.get("reason") == "global_limit":
        return {
            "error": "System at capacity. Please try again in a few minutes.",
            "details": details,
        }
    text = f"Too many concurrent jobs. {tier} tier allows {limit} concurrent course generation."
    return {"error": text, "details": details}


def _allowed_methods(request: Request) -> str:
    methods: set[str] = set()
    scope = {**request.scope, "method": "GET"}
    for route in request.app.router.routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


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
    if request.url.path.startswith(LEGACY_PREFIX):
        status, body = legacy_body(problem, internal=internal)
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse(
        problem.body(request.url.path),
        status_code=problem.status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    return render(request, exc)


def install(app: FastAPI) -> None:
    """Register the one set of exception handlers."""
    for exc_type in (
        Problem,
        RequestValidationError,
        StarletteHTTPException,
        DatabaseUnavailable,
        LeaseStoreUnavailable,
        Exception,
    ):
        app.add_exception_handler(exc_type, _handler)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}


def doc(status: int, slug: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An OpenAPI response entry for one problem, with an example."""
    example = {"type": f"/problems/{slug}", "title": slug, "status": status, "detail": detail}
    return {
        "description": detail,
        "content": {
            PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA, "example": {**example, **extra}}
        },
    }
