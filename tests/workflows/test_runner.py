"""`worker.runner`: runs are sandboxed as before, but the SDK's per-payload context questions are
answered without entering the sandbox, and only for a converter that reads no context."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import (
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, _runner

from tests.factories import make_settings
from worker import WORKFLOW_RUNNER, orchestration_options
from worker.runner import ContextFreeSandboxRunner, context_free


@dataclasses.dataclass
class Echo:
    text: str
    count: int


@activity.defn(name="runner_test_echo")
async def echo(value: Echo) -> Echo:
    return Echo(value.text.upper(), value.count + 1)


@workflow.defn(name="RunnerTestWorkflow")
class EchoWorkflow:
    @workflow.run
    async def run(self, value: Echo) -> Echo:
        local = await workflow.execute_local_activity(
            echo, value, start_to_close_timeout=timedelta(seconds=10)
        )
        return await workflow.execute_activity(
            echo, local, start_to_close_timeout=timedelta(seconds=10)
        )


class ContextCodec(PayloadCodec, WithSerializationContext):
    """A codec that reads the context (as an encryption codec keyed per workflow would)."""

    def with_context(self, context: SerializationContext) -> ContextCodec:
        return ContextCodec()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


@pytest.fixture
def sandbox_visits(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the SDK entered a sandboxed run for a payload's context."""
    visits: Counter[str] = Counter()
    for name in ("get_serialization_context", "get_external_store_context"):
        original = getattr(_runner._Instance, name)

        def counted(self: Any, info: Any, _name: str = name, _original: Any = original) -> Any:
            visits[_name] += 1
            return _original(self, info)

        monkeypatch.setattr(_runner._Instance, name, counted)
    return visits


async def _run(client: Client, runner: WorkflowRunner) -> Echo:
    queue = f"runner-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[EchoWorkflow],
        activities=[echo],
        workflow_runner=runner,
    ):
        result: Echo = await client.execute_workflow(
            EchoWorkflow.run, Echo("a", 1), id=f"runner-{uuid.uuid4().hex}", task_queue=queue
        )
        return result


async def test_a_run_needs_no_sandbox_call_per_payload(
    temporal_client: Client, sandbox_visits: Counter[str]
) -> None:
    # This module passed through, as the worker passes ours (else the sandbox imports it again).
    ours = orchestration_options(make_settings().worker, passthrough=(__name__,))
    runner = ours["workflow_runner"]
    assert isinstance(runner, ContextFreeSandboxRunner)
    assert await _run(temporal_client, runner) == Echo("A", 3)
    assert sandbox_visits == Counter()
    # The SDK's own runner enters the sandbox for every payload sequence, both ways.
    plain = SandboxedWorkflowRunner(restrictions=runner.restrictions)
    assert await _run(temporal_client, plain) == Echo("A", 3)
    assert sandbox_visits["get_serialization_context"] >= 12


def test_the_default_converter_reads_no_context() -> None:
    assert context_free(DataConverter.default)
    assert not context_free(
        dataclasses.replace(DataConverter.default, payload_codec=ContextCodec())
    )


def test_a_converter_that_reads_contexts_gets_the_sdk_sandbox() -> None:
    tuning = make_settings().worker
    codec = dataclasses.replace(DataConverter.default, payload_codec=ContextCodec())
    runner = orchestration_options(tuning, data_converter=codec)["workflow_runner"]
    assert type(runner) is SandboxedWorkflowRunner
    assert runner.restrictions == WORKFLOW_RUNNER.restrictions
    assert orchestration_options(tuning)["workflow_runner"] is WORKFLOW_RUNNER
    assert isinstance(WORKFLOW_RUNNER, ContextFreeSandboxRunner)
    off = make_settings(WORKER_WORKFLOW_SANDBOX="false").worker
    assert isinstance(
        orchestration_options(off, data_converter=codec)["workflow_runner"],
        UnsandboxedWorkflowRunner,
    )
