"""`api.problems`: Temporal errors mapped to problems; `api.legacy`: the old endpoint's bodies."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import legacy
from api.problems import (
    MAY_STILL_START,
    TEMPORAL_UNAVAILABLE,
    ConcurrencyLimit,
    DependencyUnavailable,
    NotFound,
    NotRunning,
    NotYours,
    run_problem,
    start_problem,
)
from workflows import errors


def _rpc(status: RPCStatusCode) -> RPCError:
    return RPCError("rpc failed", status, b"")


def test_course_deleted_before_the_claim_is_not_found() -> None:
    """A course deleted between the ownership check and the claim answers 404, not 503."""
    cause = ApplicationError("gone", type=errors.COURSE_NOT_FOUND, non_retryable=True)
    assert isinstance(start_problem(WorkflowUpdateFailedError(cause)), NotFound)


@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        (WorkflowUpdateRPCTimeoutOrCancelledError(), MAY_STILL_START),
        (_rpc(RPCStatusCode.DEADLINE_EXCEEDED), MAY_STILL_START),
        (_rpc(RPCStatusCode.UNAVAILABLE), TEMPORAL_UNAVAILABLE),
        (_rpc(RPCStatusCode.INTERNAL), "the run could not be started; retry shortly"),
        (
            WorkflowUpdateFailedError(ApplicationError("boom", type="Unexpected")),
            "the run could not be started; retry shortly",
        ),
    ],
    ids=["update-timeout", "deadline", "unavailable", "internal", "other-update-failure"],
)
def test_other_start_failures_are_503(exc: BaseException, detail: str) -> None:
    """Every other failed start is a 503 the client may retry, saying whether it may have run."""
    problem = start_problem(exc)
    assert isinstance(problem, DependencyUnavailable)
    assert problem.detail == detail
    # A start that may still run is retried soon (the retry attaches); an outage after a pause.
    assert problem.headers["Retry-After"] == ("1" if detail == MAY_STILL_START else "5")


def test_a_run_temporal_does_not_know_is_not_running() -> None:
    """Describe or cancel of a run Temporal does not know: 409 not-running; else 503."""
    assert isinstance(run_problem(_rpc(RPCStatusCode.NOT_FOUND)), NotRunning)
    unavailable = run_problem(_rpc(RPCStatusCode.UNAVAILABLE))
    assert isinstance(unavailable, DependencyUnavailable)
    assert unavailable.detail == TEMPORAL_UNAVAILABLE


def test_legacy_bodies() -> None:
    """The old endpoint answers 403 for another user's course, and its Russian 500 otherwise."""
    assert legacy.body(NotYours("no such course")) == (
        403,
        {"error": "Forbidden: You do not have access to this course"},
    )
    assert legacy.body(DependencyUnavailable(TEMPORAL_UNAVAILABLE)) == (
        500,
        {"error": legacy.FAILED},
    )
    assert legacy.body(legacy.LegacyBadRequest("Invalid courseId format", field="courseId")) == (
        400,
        {"error": "Invalid courseId format", "details": {"field": "courseId"}},
    )


def test_legacy_concurrency_limit() -> None:
    """A 429 names the tier, its limit and the caller's running jobs."""
    problem = ConcurrencyLimit(
        "limit", reason="user_limit", tier="FREE", limit=1, active=[{"courseId": "c"}]
    )
    status, body = legacy.body(problem)
    assert status == 429
    assert body == {
        "error": "Too many concurrent jobs. FREE tier allows 1 concurrent course generation.",
        "details": {"tier": "FREE", "user_limit": 1, "current_user_jobs": 1},
    }
