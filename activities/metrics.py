"""The `record_metric` activity: one `system_metrics` row (DESIGN §3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import activity

from activities.course import guarded
from db.repository import CourseRepository


@dataclass
class MetricInput:
    event_type: str
    severity: str
    user_id: str | None = None
    course_id: str | None = None
    job_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class MetricActivities:
    def __init__(self, repository: CourseRepository) -> None:
        self._repository = repository

    @activity.defn(name="record_metric")
    async def record_metric(self, inp: MetricInput) -> None:
        """Insert one metric; the table has no foreign keys, so this never fails on data."""
        await guarded(
            lambda: self._repository.record_metric(
                inp.event_type,
                inp.severity,
                user_id=inp.user_id,
                course_id=inp.course_id,
                job_id=inp.job_id,
                metadata=inp.metadata,
            )
        )
