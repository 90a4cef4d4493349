"""The `record_metric` activity: one `system_metrics` row, which is also one log line at its
severity, and the worker's own Prometheus counters.

The counters are made on the Temporal runtime's metric meter, so the SDK's Prometheus endpoint
(`WORKER_METRICS_PORT`) serves them next to its own worker metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity
from temporalio.common import MetricCounter, MetricMeter

from activities.course import guarded
from activities.types import RECORD_METRIC, RecordMetricInput
from db.repository import CourseRepository
from telemetry import log_system_metric

ROLLBACK = "job_rollback"
ROLLBACK_OUTCOMES = ("failed", "cancelled")


@dataclass(frozen=True)
class WorkerMetrics:
    """The worker's counters; `_total` is added by the exporter. Label values stay bounded."""

    rollbacks: MetricCounter  # {outcome}: failed | cancelled
    reconciler_repairs: MetricCounter  # {kind}: course_failed, lease_released, lease_restored…
    webhook_deliveries: MetricCounter  # {result}: delivered | failed (the webhook dispatcher)

    @classmethod
    def on(cls, meter: MetricMeter) -> WorkerMetrics:
        return cls(
            rollbacks=meter.create_counter(
                "coursegen_rollbacks", "Runs whose compensations ran (job_rollback), by outcome"
            ),
            reconciler_repairs=meter.create_counter(
                "coursegen_reconciler_repairs", "Repairs made by the reconciler, by kind"
            ),
            webhook_deliveries=meter.create_counter(
                "coursegen_webhook_deliveries", "Webhook delivery attempts, by result"
            ),
        )


class MetricActivities:
    def __init__(self, repository: CourseRepository, metrics: WorkerMetrics | None = None) -> None:
        self._repository = repository
        self._metrics = metrics or WorkerMetrics.on(MetricMeter.noop)

    @activity.defn(name=RECORD_METRIC)
    async def record_metric(self, inp: RecordMetricInput) -> None:
        """Insert one metric, its metadata naming the run (`run_id`) that recorded it; the
        table has no foreign keys, so this never fails on data.

        The log line and the counters come first and on the first attempt only: one per row,
        and still there when PostgreSQL refuses the row on every attempt.
        """
        if activity.info().attempt == 1:
            self._observe(inp)
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

    def _observe(self, inp: RecordMetricInput) -> None:
        log_system_metric(
            inp.event_type,
            inp.severity,
            course_id=inp.course_id,
            workflow_id=inp.job_id,
            user_id=inp.user_id,
            metadata=inp.metadata,
        )
        if inp.event_type == ROLLBACK:
            outcome = inp.metadata.get("outcome")
            label = outcome if outcome in ROLLBACK_OUTCOMES else "other"
            self._metrics.rollbacks.add(1, {"outcome": str(label)})
