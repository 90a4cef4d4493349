"""Temporal: the connection, the task queues, and the orchestration worker's tuning."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from settings.base import Group
from workflows.steps import stage_queue


class TemporalSettings(Group):
    address: str = Field(default="localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    api_key: str | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")
    tls_cert: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CERT")
    tls_key: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_KEY")
    tls_ca: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CA")
    task_queue: str = Field(default="course-generation", validation_alias="TEMPORAL_TASK_QUEUE")
    stage_task_queue: str = Field(
        default="course-generation-stages", validation_alias="TEMPORAL_STAGE_TASK_QUEUE"
    )
    dev_port: int = Field(default=7233, ge=1, le=65535, validation_alias="TEMPORAL_DEV_PORT")
    ui_port: int = Field(default=8233, ge=1, le=65535, validation_alias="TEMPORAL_UI_PORT")
    fairness_enabled: bool = Field(default=False, validation_alias="TEMPORAL_FAIRNESS_ENABLED")

    def stage_queue(self, stage: str) -> str:
        """`<TEMPORAL_STAGE_TASK_QUEUE>.<stage>`: the queue of `stage` and its cleanup."""
        return stage_queue(self.stage_task_queue, stage)


class WorkerSettings(Group):
    """The orchestration worker's Temporal options (docs/operations.md, "Tuning"): how many
    workflow tasks it polls and runs at once, how many runs it keeps cached (sticky), and the
    slots of its local and regular activities."""

    workflow_task_slots: int = Field(
        default=100, ge=1, validation_alias="WORKER_WORKFLOW_TASK_SLOTS"
    )
    workflow_task_pollers: int = Field(
        default=20, ge=2, validation_alias="WORKER_WORKFLOW_TASK_POLLERS"
    )
    nonsticky_poll_ratio: float = Field(
        default=0.5, gt=0, lt=1, validation_alias="WORKER_NONSTICKY_POLL_RATIO"
    )
    sticky_cache_size: int = Field(default=1000, ge=0, validation_alias="WORKER_STICKY_CACHE_SIZE")
    sticky_timeout_seconds: float = Field(
        default=10, gt=0, validation_alias="WORKER_STICKY_TIMEOUT_SECONDS"
    )
    local_activity_slots: int = Field(
        default=100, ge=1, validation_alias="WORKER_LOCAL_ACTIVITY_SLOTS"
    )
    activity_slots: int = Field(default=100, ge=1, validation_alias="WORKER_ACTIVITY_SLOTS")
    activity_pollers: int = Field(default=5, ge=1, validation_alias="WORKER_ACTIVITY_POLLERS")
    poller_autoscaling: bool = Field(default=False, validation_alias="WORKER_POLLER_AUTOSCALING")
    workflow_sandbox: bool = Field(default=True, validation_alias="WORKER_WORKFLOW_SANDBOX")
    gc_freeze: bool = Field(default=True, validation_alias="WORKER_GC_FREEZE")
