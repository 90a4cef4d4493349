"""Classify what ended a run: cancellation, a deleted course, exhausted retries, a timeout."""

from __future__ import annotations

import asyncio
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
    from activities.types import CLAIM_COURSE
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


def has_error_type(exc: BaseException, error_type: str) -> bool:
    """Whether an `ApplicationError` of `error_type` is anywhere in the failure chain."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ApplicationError) and current.type == error_type:
            return True
        current = current.__cause__
    return False


def is_course_deleted(exc: BaseException) -> bool:
    return has_error_type(exc, errors.COURSE_NOT_FOUND)


def is_stale_run(exc: BaseException) -> bool:
    return has_error_type(exc, errors.STALE_RUN)


def is_claim_failure(exc: BaseException) -> bool:
    """The course claim failed for good: PostgreSQL refused it or never answered in time."""
    return isinstance(exc, ActivityError) and exc.activity_type == CLAIM_COURSE


def raise_if_cancel_requested() -> None:
    """A cancel is delivered once: an activity that completes anyway (a stage ending before
    its next heartbeat) swallows it, so the run checks for it after each forward step."""
    if workflow.cancellation_reason() is not None:
        raise asyncio.CancelledError("cancel requested")


def retries_exhausted(exc: ActivityError) -> bool:
    """The activity gave up retrying: out of attempts or out of time (a local activity past
    its schedule-to-close reports a timeout cause rather than a retry state)."""
    out_of_retries = exc.retry_state in (RetryState.MAXIMUM_ATTEMPTS_REACHED, RetryState.TIMEOUT)
    return out_of_retries or timed_out(exc)


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
