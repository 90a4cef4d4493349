"""The activities' names and payloads: every dataclass the workflow exchanges with them.

No IO and no settings, so the workflow sandbox imports this module and calls each activity by
name with `result_type=`. Plain dataclasses, serialised as snake_case JSON.
Annotations are evaluated, not postponed: the SDK's converter reads them on every decode.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from workflows.types import CourseBrief, GenerationType, HolderInfo, LimitReason

RESERVE_LEASE = "reserve_lease"  # answers None when the lease store cannot decide (no epoch)
RELEASE_LEASE = "release_lease"
CLAIM_COURSE = "claim_course"
UPDATE_PROGRESS = "update_progress"
FINISH_GENERATION = "finish_generation"
RECORD_METRIC = "record_metric"


@dataclass
class ReserveLeaseInput:
    """`run_started_at` (ISO 8601) orders runs of one course; `ttl_seconds` is the run's own
    execution timeout (None: the worker's configured one)."""

    user_id: str
    tier: str
    workflow_id: str
    run_id: str = ""
    run_started_at: str = ""
    ttl_seconds: float | None = None


@dataclass
class ReserveLeaseResult:
    """`holders` are the user's leases; empty for `global_limit` (the caller sees no one's)."""

    decision: Literal["admitted", "rejected"]
    reason: LimitReason | None
    tier: str
    limit: int
    holders: list[HolderInfo] = field(default_factory=list)


@dataclass
class ReleaseLeaseInput:
    """Frees the lease only while it belongs to `run_id` (empty: whichever run holds it)."""

    user_id: str
    workflow_id: str
    run_id: str = ""


@dataclass
class RunOptions:
    """The worker's settings the run needs, carried in history by the claim: how stages are
    called, how long course writes retry, how long before its timeout the run fails itself.

    `task_queue` is `TEMPORAL_STAGE_TASK_QUEUE`, the prefix of the stage queues: a stage and its
    cleanup run on `<task_queue>.<stage>` (`workflows.steps.stage_queue`)."""

    task_queue: str
    start_to_close_seconds: float
    heartbeat_timeout_seconds: float
    cleanup_stages: list[str] = field(default_factory=list)
    progress_retry_seconds: float = 120
    deadline_margin_seconds: float = 300


@dataclass
class ClaimCourseInput:
    course_id: str
    workflow_id: str
    run_id: str
    run_started_at: str  # ISO 8601: a claim by a run older than the recorded one is refused
    webhook_url: str | None = None  # recorded on the row by the claim, for the dispatchers


@dataclass
class LoadedCourse:
    brief: CourseBrief
    generation_type: GenerationType
    simulation: dict[str, Any]
    options: RunOptions


@dataclass
class ClaimCourseResult:
    """The branch and the course as the claim read it, so the run needs no separate load;
    `advanced` when the claim also wrote step 1 completed and step 2 in progress."""

    generation_type: GenerationType
    course: LoadedCourse
    advanced: bool = False


@dataclass
class StepWrite:
    """One `update_course_progress` call: a step's new status and message."""

    step_id: int
    status: str
    message: str
    error_message: str | None = None
    error_details: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class UpdateProgressInput:
    """Progress writes of one run applied in order: adjacent ones (step N completed, step N+1
    in progress) travel together, so the run records one activity for both. With `release`
    (the run's last write) the run's lease is freed after them, in the same activity."""

    course_id: str
    run_id: str
    writes: list[StepWrite]
    release: ReleaseLeaseInput | None = None


@dataclass
class FinishGenerationInput:
    course_id: str
    run_id: str
    outcome: str  # "failed" | "cancelled"
    message: str
    error_details: dict[str, Any] | None = None


@dataclass
class RecordMetricInput:
    event_type: str
    severity: str
    user_id: str | None = None
    course_id: str | None = None
    job_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


RECONCILE_BEGIN = "reconcile_begin"
RECONCILE_COURSES = "reconcile_courses_page"
RECONCILE_LEASES = "reconcile_leases_page"
RECONCILE_FINISH = "reconcile_finish"


@dataclass
class ReconcileCursor:
    """Where a page starts: a course id (`""` = the first) or a ZSCAN cursor (`"0"`)."""

    cursor: str


@dataclass
class ReconcileToken:
    """The rebuild a pass began; the epoch is written only if it is still the current one."""

    token: str


@dataclass
class Repair:
    """One change a reconcile pass made; `kind` is one of `reconciler.repairs.KINDS`."""

    kind: str
    workflow_id: str
    run_id: str = ""
    course_id: str = ""
    user_id: str = ""
    detail: str = ""  # what was found: "the run was terminated", "TIMED_OUT", …


@dataclass
class ReconcilePage:
    """One page's repairs and where the next page starts ("" when this was the last)."""

    repairs: list[Repair] = field(default_factory=list)
    next: str = ""
    seen: int = 0


@dataclass
class ReconcileSummary:
    """A whole pass: its repairs, how many courses and leases it read, whether it wrote the
    epoch (a full rebuild that Redis kept)."""

    repairs: list[Repair] = field(default_factory=list)
    courses: int = 0
    leases: int = 0
    epoch_written: bool = False
