"""HTTP models of the gateway's routes: camelCase on the wire, `progress` passed through verbatim.

Pydantic stays at the edge; routes convert to and from the workflow dataclasses explicitly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

WorkflowStatusName = Literal[
    "RUNNING", "COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT", "CONTINUED_AS_NEW"
]


WEBHOOK_PATTERN = r"^{scheme}://[A-Za-z0-9.-]+(:[0-9]{{1,5}})?(/[^\s]*)?$"


class Incoming(BaseModel):
    """Request bodies: strict types, camelCase names only, unknown fields refused (422)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True)


class Outgoing(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True
    )


class StartRequest(Incoming):
    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        description="https URL notified of progress (http only when ALLOW_HTTP_WEBHOOKS=true)",
        json_schema_extra={"format": "uri", "pattern": WEBHOOK_PATTERN.format(scheme="https")},
    )
    regenerate: bool = Field(default=False, description="start again on a completed course")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"webhookUrl": "https://lms.example.com/hook"}]}
    )


class CancelRequest(Incoming):
    reason: str | None = Field(default=None, max_length=500)

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "changed my mind"}]})


class Priority(Outgoing):
    key: int
    weight: float


class Links(Outgoing):
    self_: str = Field(alias="self")
    cancel: str
    events: str


class StartResponse(Outgoing):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "courseId": "3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                    "workflowId": "course-generation-3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                    "runId": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
                    "generationType": "STRUCTURE_ANALYSIS",
                    "tier": "FREE",
                    "priority": {"key": 4, "weight": 1.0},
                    "status": "started",
                    "links": {
                        "self": "/api/v1/courses/…/generation",
                        "cancel": "/api/v1/courses/…/generation/cancel",
                        "events": "/api/v1/courses/…/generation/events",
                    },
                }
            ]
        }
    )

    course_id: str
    workflow_id: str
    run_id: str
    generation_type: str | None
    tier: str
    priority: Priority
    status: Literal["started", "already_running"]
    links: Links


class Waiting(Outgoing):
    """The run's stage activity waits for a worker of its stage (all its slots are busy)."""

    stage: str = Field(description="the stage activity waiting, e.g. text_generation")
    since: datetime = Field(description="when it was scheduled")
    backlog: int | None = Field(
        description="approximate number of tasks waiting on that stage's queue (Temporal's "
        "task-queue statistics, refreshed every few seconds); null when unavailable"
    )


class StatusResponse(Outgoing):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "courseId": "3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                    "workflowId": "course-generation-3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                    "runId": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
                    "generationStatus": "generating_structure",
                    "workflowStatus": "RUNNING",
                    "progress": {
                        "total_steps": 5,
                        "current_step": 3,
                        "percentage": 50,
                        "message": "Генерация структуры...",
                    },
                    "startedAt": "2026-01-01T10:00:00Z",
                    "completedAt": None,
                    "tier": "FREE",
                    "waiting": {
                        "stage": "structure_generation",
                        "since": "2026-01-01T10:00:05Z",
                        "backlog": 12,
                    },
                    "compensations": None,
                }
            ]
        }
    )

    course_id: str
    workflow_id: str | None
    run_id: str | None
    generation_status: str | None
    workflow_status: WorkflowStatusName | None
    progress: dict[str, Any] | None
    started_at: datetime | None
    completed_at: datetime | None
    tier: str
    waiting: Waiting | None = Field(
        default=None,
        description="while the open run's stage activity is scheduled but not yet started (on "
        "its first attempt): waiting for stage capacity; null otherwise",
    )
    compensations: list[str] | None = Field(
        default=None,
        description="once the run rolled back (failed or cancelled): what its saga undid, in "
        'order, e.g. ["finish_generation", "release_lease"]; null otherwise',
    )


class CancelResponse(Outgoing):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "courseId": "3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                    "workflowId": "course-generation-3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                    "runId": "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
                    "status": "cancelling",
                }
            ]
        }
    )

    course_id: str
    workflow_id: str
    run_id: str
    status: Literal["cancelling"] = "cancelling"


class ActiveCourse(Outgoing):
    course_id: str
    workflow_id: str
    since: datetime


class ConcurrencyResponse(Outgoing):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tier": "FREE",
                    "limit": 1,
                    "active": [
                        {
                            "courseId": "3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                            "workflowId": "course-generation-3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                            "since": "2026-01-01T10:00:00Z",
                        }
                    ],
                }
            ]
        }
    )

    tier: str
    limit: int
    active: list[ActiveCourse]


class WebhookSecretResponse(Outgoing):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}
    )

    secret: str = Field(description="Verifies the caller's webhooks (Standard Webhooks)")


class LegacyGenerateRequest(BaseModel):
    """The old endpoint's body: `courseId` (uuid) and an optional `webhookUrl` (uri)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    courseId: str = Field(json_schema_extra={"format": "uuid"})  # wire name
    webhookUrl: str | None = Field(
        default=None, max_length=2048, json_schema_extra={"format": "uri"}
    )


class LegacyGenerateResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "success": True,
                    "jobId": "course-generation-3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                    "message": "Генерация курса инициализирована",
                    "courseId": "3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f",
                }
            ]
        }
    )

    success: Literal[True] = True
    jobId: str
    message: str = "Генерация курса инициализирована"
    courseId: str


class LegacyError(BaseModel):
    error: str
    details: dict[str, Any] | None = None
