"""RFC 9457 problems: the error types the gateway answers with, and the one place that maps
store and Temporal errors to them.

Routes and dependencies raise a `Problem` subclass (or let a store error propagate);
`api.handlers` renders what reaches the edge.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from admission import LeaseStoreUnavailable
from db.errors import DatabaseUnavailable
from workflows import errors

PROBLEM_MEDIA_TYPE = "application/problem+json"
DEPENDENCY_RETRY_AFTER_SECONDS = 5
TEMPORAL_UNAVAILABLE = "temporal is unavailable"
MAY_STILL_START = "the run may still start; retrying this request attaches to it"
# A start that timed out is most likely admitted moments later, and its retry only attaches:
# the client is told to come back soon, not after an outage's pause.
MAY_STILL_START_RETRY_AFTER_SECONDS = 1
# What a failed update-with-start raises (`start_problem` maps each).
START_ERRORS = (RPCError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError)

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


class DependencyUnavailable(Problem):
    status, slug, title = 503, "dependency-unavailable", "A dependency is unavailable"

    def __init__(self, detail: str, retry_after: int = DEPENDENCY_RETRY_AFTER_SECONDS) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


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


def start_problem(exc: BaseException) -> Problem:
    """The problem for an update-with-start that failed (after the one retry it gets)."""
    cause = exc.cause if isinstance(exc, WorkflowUpdateFailedError) else None
    if isinstance(cause, ApplicationError) and cause.type == errors.COURSE_NOT_FOUND:
        return NotFound("no such course")  # deleted between the ownership check and the claim
    status = exc.status if isinstance(exc, RPCError) else None
    late = isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError)
    if late or status == RPCStatusCode.DEADLINE_EXCEEDED:
        return DependencyUnavailable(MAY_STILL_START, MAY_STILL_START_RETRY_AFTER_SECONDS)
    if status == RPCStatusCode.UNAVAILABLE:
        return DependencyUnavailable(TEMPORAL_UNAVAILABLE)
    log.error("admission update failed", error=type(exc).__name__)
    return DependencyUnavailable("the run could not be started; retry shortly")


def run_problem(exc: RPCError) -> Problem:
    """The problem for a describe or cancel of a course's recorded run that failed."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        return NotRunning("the course's run is not open")
    return DependencyUnavailable(TEMPORAL_UNAVAILABLE)


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
