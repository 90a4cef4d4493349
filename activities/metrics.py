"""The `record_metric` activity: one `system_metrics` row."""

from __future__ import annotations

from temporalio import activity

from activities.course import guarded
from activities.types import RECORD_METRIC, RecordMetricInput
from db.repository import CourseRepository


class MetricActivities:
    def __init__(self, repository: CourseRepository) -> None:
        self._repository = repository

    @activity.defn(name=RECORD_METRIC)
    async def record_metric(self, inp: RecordMetricInput) -> None:
        """Insert one metric, its metadata naming the run (`run_id`) that recorded it; the
        table has no foreign keys, so this never fails on data."""
        metadata = {"run_id": activity.info().workflow_run_id, **inp.metadata}
        await guarded(
            lambda: self._repository.record_metric(
                inp.event_type,
                inp.severity,
                user_id=inp.user_id,
                course_id=inp.course_id,
                job_id=inp.job_id,
                metadata=metadata,
            )
        )
