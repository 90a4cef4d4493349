"""`api.runs.Runs` against stand-ins for the row, the tier and Temporal: how many describes a
status read makes, and that a cancel never reaches a course whose generation has ended."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal
from api.problems import TEMPORAL_UNAVAILABLE, DependencyUnavailable, NotRunning
from api.runs import Runs
from tests.factories import make_settings
from tiers import Tier
from workflows.types import workflow_id_for

COURSE = str(uuid.uuid4())
USER = Principal(user_id=str(uuid.uuid4()), claimed_tier="FREE")


class FakeTemporal:
    """A client whose handles describe as `answer` (a status, or an RPC error) and cancel."""

    def __init__(self, answer: WorkflowExecutionStatus | RPCStatusCode, run_id: str) -> None:
        self.answer, self.run_id = answer, run_id
        self.describes: list[tuple[str, str | None]] = []
        self.cancels = 0

    async def client(self) -> Any:
        return self

    def get_workflow_handle(self, workflow_id: str, run_id: str | None = None) -> Any:
        async def describe(**_: Any) -> Any:
            self.describes.append((workflow_id, run_id))
            if isinstance(self.answer, RPCStatusCode):
                raise RPCError("describe failed", self.answer, b"")
            return SimpleNamespace(run_id=self.run_id, status=self.answer)

        async def cancel(**_: Any) -> None:
            self.cancels += 1

        return SimpleNamespace(describe=describe, cancel=cancel)


def _runs(temporal: FakeTemporal, generation_status: str | None, run_id: str = "run-1") -> Runs:
    row = SimpleNamespace(
        id=COURSE,
        workflow_id=workflow_id_for(COURSE),
        run_id=run_id,
        generation_status=generation_status,
        generation_progress=None,
        generation_started_at=None,
        generation_completed_at=None,
    )

    async def owned_course(*_: Any) -> Any:
        return row

    async def tier(*_: Any) -> Tier:
        return Tier.FREE

    starter = SimpleNamespace(owned_course=owned_course)
    tiers = SimpleNamespace(tier=tier)
    admission = make_settings().admission
    return Runs(
        cast(Any, starter), cast(Any, tiers), cast(Any, temporal), cast(Any, None), admission
    )


async def test_status_makes_one_describe_when_temporal_fails() -> None:
    """A Temporal that does not answer the describe is one describe and a 503, not a second
    describe of the recorded run."""
    temporal = FakeTemporal(RPCStatusCode.UNAVAILABLE, "run-1")
    with pytest.raises(DependencyUnavailable) as raised:
        await _runs(temporal, "generating_content").status(USER, COURSE)
    assert raised.value.detail == TEMPORAL_UNAVAILABLE
    assert len(temporal.describes) == 1


async def test_status_of_the_recorded_run_is_one_describe() -> None:
    """When the latest run is the recorded one, its status comes from that one describe."""
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    status = await _runs(temporal, "generating_content").status(USER, COURSE)
    assert status.workflow_status == "RUNNING"
    assert temporal.describes == [(workflow_id_for(COURSE), None)]


async def test_status_when_temporal_forgot_the_workflow_is_one_describe() -> None:
    """A workflow id Temporal does not know has no recorded run either: null, one describe."""
    temporal = FakeTemporal(RPCStatusCode.NOT_FOUND, "run-1")
    status = await _runs(temporal, "completed").status(USER, COURSE)
    assert status.workflow_status is None
    assert len(temporal.describes) == 1


async def test_status_of_an_older_recorded_run_describes_it_by_id() -> None:
    """A newer run than the recorded one (started between the reads): the recorded run is
    described by its id."""
    temporal = FakeTemporal(WorkflowExecutionStatus.COMPLETED, "run-2")
    await _runs(temporal, "completed", run_id="run-1").status(USER, COURSE)
    assert temporal.describes == [
        (workflow_id_for(COURSE), None),
        (workflow_id_for(COURSE), "run-1"),
    ]


@pytest.mark.parametrize("ended", ["completed", "failed", "cancelled"])
async def test_cancel_of_an_ended_generation_is_409_while_the_run_is_open(ended: str) -> None:
    """A course whose row is terminal is 409 not-running though its run is still RUNNING (it
    may be finishing after writing `completed`); no cancel is sent."""
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    with pytest.raises(NotRunning) as raised:
        await _runs(temporal, ended).cancel(USER, COURSE, None)
    assert ended in raised.value.detail
    assert temporal.cancels == 0


async def test_cancel_of_a_running_generation_is_sent() -> None:
    """A course mid-generation with its run open is cancelled."""
    temporal = FakeTemporal(WorkflowExecutionStatus.RUNNING, "run-1")
    answer = await _runs(temporal, "generating_content").cancel(USER, COURSE, "stop")
    assert (answer.run_id, temporal.cancels) == ("run-1", 1)
