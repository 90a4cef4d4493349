"""A course's progress as a stream reports it, read from the row (or carried by a notification)
and sent as an event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg
from sse_starlette import ServerSentEvent

from db.repository import CourseRow

TERMINAL = frozenset({"completed", "failed", "cancelled"})
# The keys of a full notification (db/migrations/0022_full_progress_notification.sql).
NOTIFIED_FIELDS = frozenset(
    {
        "courseId",
        "seq",
        "generationStatus",
        "currentStep",
        "percentage",
        "message",
        "workflowId",
        "runId",
    }
)


@dataclass(frozen=True)
class Snapshot:
    course_id: str
    seq: int
    generation_status: str | None
    current_step: Any
    percentage: Any
    message: str | None
    workflow_id: str | None
    run_id: str | None

    @property
    def terminal(self) -> bool:
        return self.generation_status in TERMINAL

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> Snapshot:
        """From a `progress_snapshots` row."""
        return cls(**{name: record[name] for name in cls.__dataclass_fields__})

    @classmethod
    def from_notification(cls, payload: dict[str, Any]) -> Snapshot | None:
        """From a full `course_progress` notification; None for the short form (`courseId` and
        `seq` only, sent when the whole state does not fit in a notification)."""
        if not NOTIFIED_FIELDS.issubset(payload):
            return None
        message = payload["message"]
        return cls(
            course_id=str(payload["courseId"]),
            seq=int(payload["seq"]),
            generation_status=payload["generationStatus"],
            current_step=payload["currentStep"],
            percentage=payload["percentage"],
            message=message if isinstance(message, str) else None,
            workflow_id=payload["workflowId"],
            run_id=payload["runId"],
        )

    @classmethod
    def from_course(cls, course: CourseRow) -> Snapshot:
        progress = course.generation_progress or {}
        message = progress.get("message")
        return cls(
            course_id=course.id,
            seq=course.progress_seq,
            generation_status=course.generation_status,
            current_step=progress.get("current_step"),
            percentage=progress.get("percentage"),
            message=message if isinstance(message, str) else None,
            workflow_id=course.workflow_id,
            run_id=course.run_id,
        )

    def event(self, workflow_status: str | None) -> ServerSentEvent:
        """`terminal` for a terminal status, else `progress`; `id` is the course's seq."""
        data = {
            "courseId": self.course_id,
            "seq": self.seq,
            "generationStatus": self.generation_status,
            "currentStep": self.current_step,
            "percentage": self.percentage,
            "message": self.message,
            "workflowStatus": workflow_status,
        }
        return ServerSentEvent(
            data=json.dumps(data, ensure_ascii=False, separators=(",", ":")),
            id=str(self.seq),
            event="terminal" if self.terminal else "progress",
        )
