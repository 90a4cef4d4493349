"""The workflow runner: the SDK's sandbox, without entering it for every payload's context.

Before it encodes or decodes a workflow task's payloads, the SDK asks the workflow instance for
each payload's serialization context (which workflow, which activity), three times on the way in
and three on the way out. A sandboxed instance answers by running code inside the sandbox, so a
run of ours (81 such questions) spent a quarter of the worker's CPU there, more than on running
the workflow itself. The answer only matters to a data converter with a part that reads it (a
codec or converter implementing `WithSerializationContext`, or external payload storage). Ours is
the default converter, which reads none, so `ContextFreeSandboxRunner` answers "no context"
without entering the sandbox; every activation still runs sandboxed. `context_free` decides
whether a converter qualifies, and `orchestration_options` falls back to the SDK's own runner
when it does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    SerializationContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
    WorkflowSerializationContext,
)
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

if TYPE_CHECKING:
    from temporalio.bridge.proto.workflow_activation import WorkflowActivation
    from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
    from temporalio.workflow import Info

_SAMPLE_CONTEXTS: tuple[SerializationContext, ...] = (
    WorkflowSerializationContext(namespace="default", workflow_id="wf"),
    ActivitySerializationContext(
        namespace="default",
        workflow_id="wf",
        workflow_type="Workflow",
        activity_type="activity",
        activity_id="1",
        activity_task_queue="queue",
        is_local=True,
    ),
)


def context_free(converter: DataConverter) -> bool:
    """Whether no part of `converter` reads a serialization context or stores payloads
    elsewhere: `with_context` then gives the converter itself back, whatever the context."""
    if converter.external_storage is not None:
        return False
    return all(converter.with_context(context) is converter for context in _SAMPLE_CONTEXTS)


class ContextFreeSandboxRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` whose instances tell the SDK "no context" for every payload.
    Use only with a `context_free` data converter."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(super().create_instance(det))


class _ContextFreeInstance(WorkflowInstance):
    """A sandboxed instance; only the two context questions are answered outside it."""

    def __init__(self, sandboxed: WorkflowInstance) -> None:
        self._sandboxed = sandboxed

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self._sandboxed.activate(act)

    def get_serialization_context(self, command_info: object) -> SerializationContext | None:
        return None  # the context-free converter: what the SDK uses for None

    def get_external_store_context(self, command_info: object) -> StorageDriverStoreContext:
        """The run itself (unused: a context-free converter stores no payload elsewhere)."""
        info = self.get_info()
        return StorageDriverStoreContext(
            target=StorageDriverWorkflowInfo(
                id=info.workflow_id,
                run_id=info.run_id,
                type=info.workflow_type,
                namespace=info.namespace,
            )
        )

    def get_info(self) -> Info:
        return self._sandboxed.get_info()

    def get_thread_id(self) -> int | None:
        return self._sandboxed.get_thread_id()
