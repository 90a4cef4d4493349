"""Shared payload types of the course-generation workflow, field by field.

Plain dataclasses serialised by the default data converter as snake_case JSON, so workers in
other languages can read them. No IO, no settings: the workflow sandbox imports this module.
Annotations are evaluated, not postponed: the SDK's converter reads them on every decode.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

WORKFLOW_ID_PREFIX = "course-generation-"

Decision = Literal["admitted", "rejected", "unavailable", "closing"]
LimitReason = Literal["user_limit", "global_limit"]
GenerationType = Literal["DOCUMENT_PROCESSING", "STRUCTURE_ANALYSIS"]


def workflow_id_for(course_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{course_id}"


def course_id_of(workflow_id: str) -> str:
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX)


@dataclass
class CourseGenerationInput:
    course_id: str
    user_id: str
    tier: str
    request_id: str
    start_token: str
    webhook_url: str | None = None


@dataclass
class AdmissionRequest:
    start_token: str


@dataclass
class HolderInfo:
    course_id: str
    workflow_id: str
    since: str  # ISO 8601, UTC


@dataclass
class AdmissionResult:
    decision: Decision
    reason: LimitReason | None
    tier: str
    limit: int
    holders: list[HolderInfo] = field(default_factory=list)
    generation_type: GenerationType | None = None
    workflow_id: str = ""
    run_id: str = ""
    new_run: bool = False
    unavailable: Literal["redis", "postgresql"] | None = None  # which store, when unavailable


@dataclass
class CourseBrief:
    title: str
    language: str | None = None
    style: str | None = None
    course_description: str | None = None
    target_audience: str | None = None
    difficulty: str | None = None
    lesson_duration_minutes: int | None = None
    learning_outcomes: Any = None
    estimated_lessons: int | None = None
    estimated_sections: int | None = None
    content_strategy: str | None = None
    output_formats: Any = None


@dataclass
class StageInput:
    course_id: str
    user_id: str
    workflow_id: str
    run_id: str
    generation_type: GenerationType
    step_id: int
    course: CourseBrief
    simulation: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageOutput:
    summary: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerationOutcome:
    """What a run returns: `completed`, `rejected`, `unavailable` or `course_deleted`."""

    outcome: str
    reason: str | None = None
    generation_type: GenerationType | None = None
