"""`api.answers`: what a start answers for each admission decision, whether or not the request
started the run, and for a repeat the `admission` validator turned away (`DuplicateStart`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from api import answers
from api.problems import Closing, ConcurrencyLimit, DependencyUnavailable, start_problem
from workflows import errors
from workflows.types import AdmissionResult, Decision, HolderInfo

HOLDER = HolderInfo(course_id="c-1", workflow_id="course-generation-c-1", since="2026-01-01T00:00Z")


def _result(decision: Decision, *, new_run: bool = False) -> AdmissionResult:
    return AdmissionResult(
        decision=decision,
        reason="user_limit" if decision == "rejected" else None,
        tier="FREE",
        limit=1,
        holders=[HOLDER] if decision == "rejected" else [],
        generation_type="STRUCTURE_ANALYSIS" if decision == "admitted" else None,
        workflow_id="course-generation-c-2",
        run_id="run-2",
        new_run=new_run,
    )


def _duplicate_start(details: object) -> WorkflowUpdateFailedError:
    cause = ApplicationError(
        "this start was already answered", details, type=errors.DUPLICATE_START, non_retryable=True
    )
    return WorkflowUpdateFailedError(cause)


@pytest.mark.parametrize("new_run", [True, False])
def test_admitted_is_the_answer(new_run: bool) -> None:
    """An admitted result is answered as is: 202 for the new run, 200 for a repeat."""
    result = _result("admitted", new_run=new_run)
    assert answers.checked(result, 30) is result


@pytest.mark.parametrize("new_run", [True, False])
def test_rejected_is_429_even_for_a_repeat(new_run: bool) -> None:
    """A repeat that reaches a refused run gets the refusal: 429 with the limit and holders."""
    with pytest.raises(ConcurrencyLimit) as raised:
        answers.checked(_result("rejected", new_run=new_run), 30)
    problem = raised.value
    assert problem.headers == {"Retry-After": "30"}
    assert problem.extensions["reason"] == "user_limit"
    assert problem.extensions["active"] == [
        {"courseId": "c-1", "workflowId": "course-generation-c-1", "since": "2026-01-01T00:00Z"}
    ]


@pytest.mark.parametrize("new_run", [True, False])
@pytest.mark.parametrize("store", ["redis", "postgresql", None])
def test_unavailable_is_503_naming_the_store(new_run: bool, store: Any) -> None:
    """An `unavailable` run is 503 with Retry-After, even for a repeat; the detail names the
    store the run found unavailable (the lease store or the claim), when it knows it."""
    result = dataclasses.replace(_result("unavailable", new_run=new_run), unavailable=store)
    with pytest.raises(DependencyUnavailable) as raised:
        answers.checked(result, 30)
    expected = f"{store} is unavailable; retry shortly" if store else answers.RUN_UNAVAILABLE
    assert raised.value.detail == expected
    assert raised.value.headers["Retry-After"]


def test_closing_is_409() -> None:
    """A repeat that reaches a compensating run is 409 closing."""
    with pytest.raises(Closing):
        answers.checked(_result("closing"), 30)


def test_as_repeat_keeps_the_run() -> None:
    """A request that joined another's start answers the same run, as a repeat."""
    leader = _result("admitted", new_run=True)
    assert answers.as_repeat(leader) == dataclasses.replace(leader, new_run=False)


@pytest.mark.parametrize("decision", ["admitted", "rejected", "unavailable"])
def test_duplicate_start_is_the_runs_answer_as_a_repeat(decision: Decision) -> None:
    """The validator's `DuplicateStart` carries the run's answer (snake_case dict): it is read
    back as that answer with `new_run` false, holders included."""
    answer = _result(decision, new_run=True)
    result = answers.duplicate_of(_duplicate_start(dataclasses.asdict(answer)))
    assert result == dataclasses.replace(answer, new_run=False)


def test_duplicate_start_of_an_admitted_run_answers_200_with_its_ids() -> None:
    """Through `checked`, the refused repeat of an admitted run is the normal repeat answer."""
    answer = _result("admitted")
    result = answers.duplicate_of(_duplicate_start(dataclasses.asdict(answer)))
    assert result is not None
    checked = answers.checked(result, 30)
    assert (checked.workflow_id, checked.run_id, checked.new_run) == (
        "course-generation-c-2",
        "run-2",
        False,
    )


@pytest.mark.parametrize(
    "exc",
    [
        _duplicate_start("not a dict"),
        _duplicate_start({"decision": "admitted"}),
        WorkflowUpdateFailedError(ApplicationError("no details", type=errors.DUPLICATE_START)),
        WorkflowUpdateFailedError(ApplicationError("other", {}, type="Unexpected")),
        RuntimeError("not an update failure"),
    ],
    ids=["details-not-a-dict", "details-incomplete", "no-details", "other-type", "other-error"],
)
def test_other_failures_are_not_duplicates(exc: BaseException) -> None:
    """Anything else (or a refusal whose details cannot be read) is left to `start_problem`."""
    assert answers.duplicate_of(exc) is None


def test_unreadable_duplicate_start_is_a_503() -> None:
    """A refusal that cannot be read is answered as a start that failed: 503, retry."""
    assert isinstance(start_problem(_duplicate_start("?")), DependencyUnavailable)
