"""`devstack.queues.QueuesPolled`: the launcher waits for a poller on the workflow queue and on
every stage's queue, counting only our own worker's pollers on the queues it serves."""

from __future__ import annotations

import time
from typing import Any, cast

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.taskqueue.v1 import PollerInfo
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeTaskQueueResponse,
)
from temporalio.client import Client

from devstack.queues import QueuesPolled
from tests.factories import make_settings
from workflows.steps import STAGE_NAMES

NOW = time.time()


class _Client:
    """Pollers last seen `ages` seconds ago, per queue name."""

    namespace = "default"

    def __init__(self, ages: dict[str, float]) -> None:
        self.ages = ages
        self.workflow_service = self

    async def describe_task_queue(self, request: DescribeTaskQueueRequest) -> Any:
        age = self.ages.get(request.task_queue.name)
        seen = [] if age is None else [Timestamp(seconds=int(NOW - age))]
        return DescribeTaskQueueResponse(pollers=[PollerInfo(last_access_time=t) for t in seen])


def _polled(ages: dict[str, float], simulated: str) -> QueuesPolled:
    settings = make_settings(SIMULATED_STAGES=simulated)
    return QueuesPolled(cast(Client, _Client(ages)), settings, since=NOW - 10)


async def test_ready_when_every_queue_has_a_poller() -> None:
    queues = ["course-generation", *(f"course-generation-stages.{s}" for s in STAGE_NAMES)]
    polled = _polled(dict.fromkeys(queues, 1.0), "all")
    assert await polled()
    assert polled.idle is None


async def test_names_a_stage_queue_no_one_polls() -> None:
    """A stage another fleet should serve, without a poller: named, with who serves it."""
    others = [s for s in STAGE_NAMES if s != "text_generation"]
    ages = {"course-generation": 1.0, **{f"course-generation-stages.{s}": 1.0 for s in others}}
    polled = _polled(ages, ",".join(others))
    assert not await polled()
    assert polled.idle == "course-generation-stages.text_generation"
    assert polled.describe() == (
        "a poller on task queue course-generation-stages.text_generation (served by another fleet)"
    )


async def test_our_queues_count_only_pollers_since_our_worker_started() -> None:
    """A poller of ours seen before the launch (an earlier worker, gone) does not count; another
    fleet's poller seen within the usual window does."""
    ages = {"course-generation": 30.0, "course-generation-stages.text_generation": 30.0}
    polled = _polled(ages, "none")
    assert not await polled()
    assert polled.idle == "course-generation"
    ages["course-generation"] = 1.0
    assert not await polled()
    assert polled.idle == "course-generation-stages.document_processing"
