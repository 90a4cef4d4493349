"""`temporal_connect.live_pollers`: pollers the server saw recently, not departed ones."""

from __future__ import annotations

import time
from typing import Any, cast

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import PollerInfo
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeTaskQueueResponse,
)
from temporalio.client import Client

import temporal_connect


class _Service:
    def __init__(self, ages: list[float]) -> None:
        now = time.time()
        self.pollers = [PollerInfo(last_access_time=Timestamp(seconds=int(now - a))) for a in ages]
        self.requests: list[DescribeTaskQueueRequest] = []

    async def describe_task_queue(self, request: DescribeTaskQueueRequest) -> Any:
        self.requests.append(request)
        return DescribeTaskQueueResponse(pollers=self.pollers)


class _Client:
    namespace = "ns"

    def __init__(self, ages: list[float]) -> None:
        self.workflow_service = _Service(ages)


async def test_counts_only_pollers_seen_within_the_window() -> None:
    """A poller last seen 3 minutes ago (gone) does not count; ones seen within 70 s do."""
    fake = _Client([1, 55, 180])
    kind = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    assert await temporal_connect.live_pollers(cast(Client, fake), "q", kind) == 2
    request = fake.workflow_service.requests[0]
    assert (request.namespace, request.task_queue.name) == ("ns", "q")
    assert request.task_queue.kind == TaskQueueKind.TASK_QUEUE_KIND_NORMAL
    assert request.task_queue_type == kind


async def test_the_window_is_a_parameter() -> None:
    """The launcher narrows the window to 'since the worker it started'."""
    fake = cast(Client, _Client([1, 30]))
    kind = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
    assert await temporal_connect.live_pollers(fake, "q", kind, seen_within_seconds=10) == 1
