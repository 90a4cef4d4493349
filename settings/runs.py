"""A run's lifetime (its execution timeout, the deadline margin, progress retries) and the
reconciler that repairs runs whose stores drifted from Temporal."""

from __future__ import annotations

from pydantic import Field

from settings.base import Group


class WorkflowSettings(Group):
    execution_timeout_seconds: int = Field(
        default=21_600, ge=60, validation_alias="WORKFLOW_EXECUTION_TIMEOUT_SECONDS"
    )
    deadline_margin_seconds: int = Field(
        default=300, ge=0, validation_alias="RUN_DEADLINE_MARGIN_SECONDS"
    )
    progress_retry_seconds: float = Field(
        default=120, gt=0, validation_alias="PROGRESS_RETRY_SECONDS"
    )


class ReconcileSettings(Group):
    """The reconciler's Schedule: every `interval_seconds` (0 = no Schedule: off)."""

    interval_seconds: int = Field(default=60, ge=0, validation_alias="RECONCILE_INTERVAL_SECONDS")
    grace_seconds: int = Field(default=120, ge=0, validation_alias="RECONCILE_GRACE_SECONDS")
