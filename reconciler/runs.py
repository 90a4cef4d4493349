"""What Temporal says about course-generation runs: which of some workflow ids have an open
run (visibility, one query per page), and the state of one run (a describe of its run id).

Visibility lags a second or two, so "not listed as open" is only a reason to describe: a run
counts as closed only when its describe says so (or the run does not exist).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

WORKFLOW_TYPE = "CourseGenerationWorkflow"
DESCRIBE_TIMEOUT = timedelta(seconds=5)
# Ids that can go into a visibility query as they are; others are described one by one.
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._:-]+$")
NOT_FOUND = "NOT_FOUND"
# What each closed status means for a course still shown as running.
ENDINGS = {
    "TERMINATED": "the run was terminated",
    "TIMED_OUT": "the run timed out",
    "COMPLETED": "the run completed without finishing the course",
    "FAILED": "the run failed without finishing the course",
    "CANCELED": "the run was cancelled without finishing the course",
    "CONTINUED_AS_NEW": "the run continued as new",
    NOT_FOUND: "no workflow run exists",
}


@dataclass(frozen=True)
class PendingStage:
    """A pending activity of a run: `started` (a worker has it) or still in a backlog."""

    activity_type: str
    activity_id: str
    attempt: int
    started: bool
    progress: str  # a digest of its heartbeat details ("" before the first one)
    started_at: float  # epoch seconds of its last start (0 when not started)


@dataclass(frozen=True)
class RunState:
    """A run as its describe shows it; `status` NOT_FOUND when there is no such run."""

    status: str
    run_id: str = ""
    started_at: float = 0.0
    expires_at: float | None = None  # start + execution timeout; None without a timeout
    pending: list[PendingStage] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status == "RUNNING"

    @property
    def ending(self) -> str:
        return ENDINGS.get(self.status, f"the run ended {self.status.lower()}")


class RunLookup:
    def __init__(self, client: Client) -> None:
        self._client = client

    async def open_among(self, workflow_ids: Sequence[str]) -> dict[str, str]:
        """workflow id → run id of the open course-generation run, for those of `workflow_ids`
        that visibility lists as running (one query)."""
        plain = sorted({wid for wid in workflow_ids if _PLAIN_ID.match(wid)})
        if not plain:
            return {}
        listed = ", ".join(f"'{wid}'" for wid in plain)
        query = (
            f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
            f" AND WorkflowId IN ({listed})"
        )
        found: dict[str, str] = {}
        async for execution in self._client.list_workflows(query, page_size=len(plain)):
            found[execution.id] = execution.run_id
        return found

    async def describe(self, workflow_id: str, run_id: str | None) -> RunState:
        """The state of run `run_id` of `workflow_id` (None: its latest run); NOT_FOUND also
        for a run id that cannot exist (Temporal refuses it as invalid)."""
        handle = self._client.get_workflow_handle(workflow_id, run_id=run_id or None)
        try:
            described = await handle.describe(rpc_timeout=DESCRIBE_TIMEOUT)
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                return RunState(NOT_FOUND, run_id or "")
            raise
        status = described.status or WorkflowExecutionStatus.RUNNING
        raw = described.raw_description
        timeout = raw.execution_config.workflow_execution_timeout.ToTimedelta()
        started = described.start_time.timestamp()
        return RunState(
            status=status.name,
            run_id=described.run_id,
            started_at=started,
            expires_at=started + timeout.total_seconds() if timeout else None,
            pending=[_pending(info) for info in raw.pending_activities],
        )


def _pending(info: PendingActivityInfo) -> PendingStage:
    details = info.heartbeat_details
    digest = hashlib.sha256(details.SerializeToString(deterministic=True)).hexdigest()[:16]
    last_started = info.last_started_time
    return PendingStage(
        activity_type=info.activity_type.name,
        activity_id=info.activity_id,
        attempt=info.attempt,
        started=info.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
        progress=digest if details.payloads else "",
        started_at=last_started.seconds + last_started.nanos / 1e9,
    )
