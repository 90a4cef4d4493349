"""How the start path maps a failed admission update to a problem (api.starts._problem)."""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities import errors
from api.problems import DependencyUnavailable, NotFound
from api.starts import MAY_STILL_START, _problem


def test_course_deleted_before_the_claim_is_not_found() -> None:
    """A course deleted between the ownership check and the claim answers 404, not 503."""
    cause = ApplicationError("course gone", type=errors.COURSE_NOT_FOUND, non_retryable=True)
    assert isinstance(_problem(WorkflowUpdateFailedError(cause)), NotFound)


def test_other_update_failures_are_dependency_unavailable() -> None:
    """Any other failed update is a 503 the client may retry."""
    cause = ApplicationError("boom", type="Unexpected")
    assert isinstance(_problem(WorkflowUpdateFailedError(cause)), DependencyUnavailable)


def test_deadline_exceeded_says_the_run_may_still_start() -> None:
    """An RPC deadline says that retrying attaches to a run that may have started."""
    problem = _problem(RPCError("late", RPCStatusCode.DEADLINE_EXCEEDED, b""))
    assert isinstance(problem, DependencyUnavailable)
    assert MAY_STILL_START in str(problem)
