"""What a start answers, from the run's `AdmissionResult`: the admitted result itself (202 for a
new run, 200 for a repeat), or the problem a refusal maps to.

The decision decides, not `new_run`: a repeat that reaches a refused run gets the refusal (429,
503) like the start that was refused. A repeat the `admission` validator turned away
(`DuplicateStart`, details[0] the run's answer) is answered as the repeat it is.
"""

from __future__ import annotations

import dataclasses

import structlog
from temporalio.client import WorkflowUpdateFailedError
from temporalio.converter import value_to_type
from temporalio.exceptions import ApplicationError

from api.problems import Closing, ConcurrencyLimit, DependencyUnavailable
from workflows import errors
from workflows.types import AdmissionResult

# An `unavailable` admission names the store that did not answer when the run knows it.
RUN_UNAVAILABLE = "a store the run needs did not answer; retry shortly"
log = structlog.get_logger("api.answers")


def checked(result: AdmissionResult, retry_after_seconds: int) -> AdmissionResult:
    """`result` when the run admitted it; else raise the problem its decision maps to."""
    if result.decision == "admitted":
        return result
    if result.decision == "rejected":
        raise _concurrency_limit(result, retry_after_seconds)
    if result.decision == "closing":
        raise Closing()
    if result.unavailable is not None:
        raise DependencyUnavailable(f"{result.unavailable} is unavailable; retry shortly")
    raise DependencyUnavailable(RUN_UNAVAILABLE)


def as_repeat(result: AdmissionResult) -> AdmissionResult:
    """The answer of a start that attached to a run another request started."""
    return dataclasses.replace(result, new_run=False)


def duplicate_of(exc: BaseException) -> AdmissionResult | None:
    """The run's answer carried by a `DuplicateStart` refusal, as a repeat; None for any other
    error, and for a refusal whose details cannot be read (logged)."""
    cause = exc.cause if isinstance(exc, WorkflowUpdateFailedError) else None
    if not isinstance(cause, ApplicationError) or cause.type != errors.DUPLICATE_START:
        return None
    try:
        result = value_to_type(AdmissionResult, cause.details[0])
    except (IndexError, TypeError, ValueError) as failed:
        log.error("unreadable DuplicateStart details", error=str(failed))
        return None
    return as_repeat(result)


def _concurrency_limit(result: AdmissionResult, retry_after_seconds: int) -> ConcurrencyLimit:
    active = [
        {"courseId": h.course_id, "workflowId": h.workflow_id, "since": h.since}
        for h in result.holders
    ]
    return ConcurrencyLimit(
        f"the {result.tier} tier allows {result.limit} concurrent generation(s)",
        headers={"Retry-After": str(retry_after_seconds)},
        reason=result.reason,
        tier=result.tier,
        limit=result.limit,
        active=active if result.reason == "user_limit" else [],
    )
