"""Classify what ended a run: cancellation, a deleted course, exhausted retries, a timeout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    TimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from workflows import errors


def application_cause(exc: BaseException) -> ApplicationError | None:
    """The innermost `ApplicationError` in the failure chain, if any."""
    current: BaseException | None = exc
    found: ApplicationError | None = None
    while current is not None:
        if isinstance(current, ApplicationError):
            found = current
        current = current.__cause__
    return found


def is_course_deleted(exc: BaseException) -> bool:
    cause = application_cause(exc)
    return cause is not None and cause.type == errors.COURSE_NOT_FOUND


def retries_exhausted(exc: ActivityError) -> bool:
    return exc.retry_state in (RetryState.MAXIMUM_ATTEMPTS_REACHED, RetryState.TIMEOUT)


def timed_out(exc: ActivityError) -> bool:
    return isinstance(exc.cause, TimeoutError)


@dataclass
class Ending:
    """How a rolled-back run ends the course: `failed` or `cancelled`, the message, details."""

    outcome: str = "failed"
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def describe(exc: BaseException) -> tuple[str, dict[str, Any]]:
    """A message for the course row and the details stored next to it."""
    cause = application_cause(exc)
    if cause is not None:
        return cause.message, {"type": cause.type, "retryable": not cause.non_retryable}
    if isinstance(exc, ActivityError) and timed_out(exc):
        return f"{exc.activity_type} timed out", {"type": "ActivityTimeout"}
    message = exc.message if isinstance(exc, FailureError) else str(exc)
    return message or type(exc).__name__, {"type": type(exc).__name__}


def seconds(raw: object, default: float = 0.0) -> float:
    """A non-negative number of seconds from a JSON knob, else `default`."""
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
        return float(raw)
    return default
