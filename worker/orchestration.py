"""The orchestration worker: the workflows (course generation, reconciliation) and their
activities (lease, course, metric, reconcile) on `TEMPORAL_TASK_QUEUE`, built beside the stage
workers."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.admission import AdmissionActivities
from activities.course import CourseActivities
from activities.metrics import MetricActivities, WorkerMetrics
from activities.reconcile import ReconcileActivities
from admission import Leases
from db.repository import CourseRepository
from reconciler.schedule import PassTrigger
from reconciler.wiring import build_reconciler
from settings import Settings
from worker.options import SHUTDOWN_GRACE, orchestration_options, run_options
from worker.stages import stage_workers
from workflows.course_generation import CourseGenerationWorkflow
from workflows.reconcile import ReconcileWorkflow


def build_workers(
    client: Client,
    settings: Settings,
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    repository: CourseRepository | None = None,
) -> list[Worker]:
    """The orchestration worker and the simulated stages' workers, not yet running.

    `repository` replaces the one built on `pool` (tests inject faults through it).
    """
    repository = repository or CourseRepository(pool)
    leases = Leases(redis, settings.stores.redis_key_prefix)
    admission = AdmissionActivities(
        leases,
        settings.admission,
        settings.workflow.execution_timeout_seconds,
        rebuild=PassTrigger(client, settings.temporal.task_queue),
    )
    course = CourseActivities(repository, run_options(settings), admission.release_lease)
    runtime = client.service_client.config.runtime or Runtime.default()
    counters = WorkerMetrics.on(runtime.metric_meter)
    metrics = MetricActivities(repository, counters)
    repairs = counters.reconciler_repairs
    reconcile = ReconcileActivities(
        build_reconciler(settings, pool, redis, client, lambda kind: repairs.add(1, {"kind": kind}))
    )
    orchestration = Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=[CourseGenerationWorkflow, ReconcileWorkflow],
        activities=[
            admission.reserve_lease,
            admission.release_lease,
            course.claim_course,
            course.update_progress,
            course.finish_generation,
            metrics.record_metric,
            reconcile.begin,
            reconcile.courses_page,
            reconcile.leases_page,
            reconcile.finish,
        ],
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
        **orchestration_options(settings.worker, data_converter=client.data_converter),
    )
    return [orchestration, *stage_workers(client, settings)]
