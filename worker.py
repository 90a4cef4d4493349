"""The worker process: the composition root of the workflow and its activities.

`python -m worker` runs one worker on `TEMPORAL_TASK_QUEUE` (the workflow, course, lease and
metric activities) and one per stage in `SIMULATED_STAGES` on that stage's own queue
`<TEMPORAL_STAGE_TASK_QUEUE>.<stage>` (`STAGE_CAPACITY_<STAGE>` or `STAGE_CAPACITY` slots, or the
resource-based tuner), and the webhook dispatcher, until SIGTERM/SIGINT, serving Prometheus
metrics (the SDK's and ours) on `WORKER_METRICS_PORT`. The orchestration worker also runs the
reconciler (`ReconcileWorkflow` and its activities): at start it creates or updates the
reconciler's Schedule (`RECONCILE_INTERVAL_SECONDS`; 0 deletes it) and asks for one pass at
once. `python -m worker stages` runs only those stage workers (a stage fleet: it needs
Temporal only). `python -m worker setup-search-attributes` registers the five search
attributes idempotently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
import redis.asyncio as aioredis
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import (
    PollerBehavior,
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    ResourceBasedSlotConfig,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerTuner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import temporal_connect
from activities.admission import AdmissionActivities
from activities.course import CourseActivities
from activities.metrics import MetricActivities, WorkerMetrics
from activities.reconcile import ReconcileActivities
from activities.stages import SimulatedStages
from activities.types import RunOptions
from admission import Leases, create_redis
from db.migrate import SchemaBehind
from db.outbox import Outbox
from db.pool import UNREACHABLE, Backoff, open_pool
from db.repository import CourseRepository
from observability import configure_tracing, metrics_runtime_or_exit
from reconciler.schedule import PassTrigger, apply_schedule, start_pass
from reconciler.wiring import build_reconciler
from settings import Settings, WorkerSettings, settings_or_exit
from telemetry import configure_logging, run_then_exit
from webhooks.addresses import AddressGuard
from webhooks.dispatcher import Dispatcher, DispatchPolicy
from webhooks.sender import Sender
from workflows.course_generation import CourseGenerationWorkflow
from workflows.reconcile import ReconcileWorkflow

log = logging.getLogger("worker")
T = TypeVar("T")
SHUTDOWN_GRACE = timedelta(seconds=10)
# Our own packages hold no per-run state, so the sandbox takes them from the host instead of
# re-executing the workflow module and its helpers for every new run: about 9 ms less CPU on each
# run's first workflow task, which is on the admission path (bench.gateway). The sandbox still
# isolates everything else, and the replay tests replay under the default, full sandbox.
PASSTHROUGH_MODULES = ("workflows", "activities", "tiers")
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
)
# The worker waits for PostgreSQL as long as it takes, also for a database that migrations have
# not created yet: it may start before the database does.
POSTGRES_BACKOFF = Backoff(
    attempts=None,
    delay=0.5,
    max_delay=30,
    connect_timeout=5,
    retry_on=(*UNREACHABLE, asyncpg.PostgresError, RuntimeError),
)


def run_options(settings: Settings) -> RunOptions:
    return RunOptions(
        task_queue=settings.temporal.stage_task_queue,
        start_to_close_seconds=settings.stages.start_to_close_seconds,
        heartbeat_timeout_seconds=settings.stages.heartbeat_timeout_seconds,
        cleanup_stages=list(settings.stages.cleanup_activities),
        progress_retry_seconds=settings.workflow.progress_retry_seconds,
        deadline_margin_seconds=settings.workflow.deadline_margin_seconds,
    )


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
    course = CourseActivities(repository, run_options(settings))
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
        **orchestration_options(settings.worker),
    )
    return [orchestration, *stage_workers(client, settings)]


def orchestration_options(tuning: WorkerSettings) -> dict[str, Any]:
    """The orchestration worker's `Worker` options from its `WORKER_*` settings."""
    runner = WORKFLOW_RUNNER if tuning.workflow_sandbox else UnsandboxedWorkflowRunner()
    return {
        "workflow_runner": runner,
        "max_concurrent_workflow_tasks": tuning.workflow_task_slots,
        "workflow_task_poller_behavior": pollers(tuning.workflow_task_pollers, tuning),
        "nonsticky_to_sticky_poll_ratio": tuning.nonsticky_poll_ratio,
        "max_cached_workflows": tuning.sticky_cache_size,
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=tuning.sticky_timeout_seconds),
        "max_concurrent_local_activities": tuning.local_activity_slots,
        "max_concurrent_activities": tuning.activity_slots,
        "activity_task_poller_behavior": pollers(tuning.activity_pollers, tuning),
    }


def pollers(maximum: int, tuning: WorkerSettings) -> PollerBehavior:
    """At most `maximum` polls at once; with `WORKER_POLLER_AUTOSCALING`, as many as the server's
    feedback asks for, from 1 up to that."""
    if tuning.poller_autoscaling:
        return PollerBehaviorAutoscaling(minimum=1, maximum=maximum, initial=min(5, maximum))
    return PollerBehaviorSimpleMaximum(maximum)


def stage_workers(client: Client, settings: Settings) -> list[Worker]:
    """One worker per stage in `SIMULATED_STAGES`, on that stage's own queue, registering the
    stage and, when `STAGE_CLEANUP_ACTIVITIES` lists it, its cleanup: nothing of another stage,
    since Temporal hands a poller any task of its queue."""
    stages = settings.stages
    simulated = SimulatedStages(stages.simulated_stage_seconds)
    return [
        stage_worker(
            client,
            settings.temporal.stage_queue(stage),
            simulated.for_stage(stage, cleanup=stage in stages.cleanup_activities),
            stages.capacity_for(stage),
            stages.resource_tuner,
        )
        for stage in stages.simulated_stages
    ]


def stage_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Any],
    capacity: int,
    resource_tuner: bool = False,
) -> Worker:
    """A stage queue's worker with `capacity` slots (or sized by CPU and memory up to that):
    tasks beyond it wait in the queue's backlog, taken in priority order."""
    tuner = (
        WorkerTuner.create_resource_based(
            target_memory_usage=0.8,
            target_cpu_usage=0.9,
            activity_config=ResourceBasedSlotConfig(minimum_slots=1, maximum_slots=capacity),
        )
        if resource_tuner
        else WorkerTuner.create_fixed(
            workflow_slots=10, activity_slots=capacity, local_activity_slots=10
        )
    )
    return Worker(
        client,
        task_queue=task_queue,
        activities=list(activities),
        tuner=tuner,
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
    )


def webhook_dispatcher(
    settings: Settings, pool: asyncpg.Pool, runtime: Runtime | None = None
) -> Dispatcher:
    """The webhook outbox dispatcher: delivery is owned here, outside the runs."""
    guard = AddressGuard(
        allow_http=settings.api.allow_http_webhooks, allow_hosts=settings.webhook.allow_hosts
    )
    policy = DispatchPolicy(retry_seconds=settings.webhook.retry_seconds)
    counter = WorkerMetrics.on((runtime or Runtime.default()).metric_meter).webhook_deliveries
    return Dispatcher(
        Outbox(pool),
        Sender(guard),
        settings.webhook.secret,
        policy,
        count=lambda result: counter.add(1, {"result": result}),
    )


async def with_retries(what: str, attempt: Callable[[], Awaitable[T]], max_delay: float = 30) -> T:
    """Call `attempt` until it succeeds, backing off; the worker starts even with Temporal down."""
    delay = 0.5
    while True:
        try:
            return await attempt()
        except (OSError, RuntimeError) as exc:
            log.warning("%s unreachable, retrying in %.1fs: %s", what, delay, exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)


async def open_store_pool(settings: Settings) -> asyncpg.Pool:
    """The pool once PostgreSQL answers; a schema behind prints its one line and exits 1."""
    stores = settings.stores
    sizes = (stores.db_pool_min_size, stores.db_pool_max_size)
    try:
        return await open_pool(stores.database_dsn, *sizes, POSTGRES_BACKOFF)
    except SchemaBehind as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


async def serve(settings: Settings, stop: asyncio.Event, stages_only: bool = False) -> None:
    """Run the workers until `stop` is set, then shut them down gracefully; `stages_only`: just
    the stage workers, without PostgreSQL and Redis. The webhook dispatcher runs with the
    orchestration worker (it first starts, last stops: it needs no Temporal)."""
    runtime = metrics_runtime_or_exit(settings.telemetry.worker_metrics_port)
    if stages_only:
        client = await connect_with_retries(settings, runtime)
        await run_until(stage_workers(client, settings), stop)
        return
    pool = await open_store_pool(settings)
    redis = create_redis(settings.stores.redis_dsn)
    dispatcher = webhook_dispatcher(settings, pool, runtime)
    try:
        async with dispatcher.running(settings.stores.database_dsn):
            client = await connect_with_retries(settings, runtime)
            workers = build_workers(client, settings, pool, redis)
            await run_until(workers, stop, lambda: start_reconciler(client, settings))
    finally:
        await redis.aclose()
        await pool.close()


async def connect_with_retries(settings: Settings, runtime: Runtime | None) -> Client:
    return await with_retries(
        "Temporal", lambda: temporal_connect.connect(settings.temporal, runtime=runtime)
    )


async def run_until(
    workers: Sequence[Worker],
    stop: asyncio.Event,
    started: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run `workers` until `stop`; `started` is called once they poll."""
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        log.info("worker polling %s", [w.task_queue for w in workers])
        if started is not None:
            await started()
        await stop.wait()
        log.info("shutting down")


async def start_reconciler(client: Client, settings: Settings) -> None:
    """Create, update or delete the reconciler's Schedule and ask for a pass now (unless the
    interval is 0). A failure is logged: the worker runs on, the next start tries again."""
    queue, interval = settings.temporal.task_queue, settings.reconcile.interval_seconds
    try:
        log.info("reconciler schedule %s", await apply_schedule(client, queue, interval))
        if interval > 0:
            await start_pass(client, queue)
    except Exception as exc:
        log.warning("reconciler schedule not applied: %s", exc)


async def setup_search_attributes(settings: Settings) -> list[str]:
    """Register the missing search attributes as Keyword; returns the names added."""
    client = await temporal_connect.connect(settings.temporal)
    return await temporal_connect.add_missing_search_attributes(client)


async def _run(settings: Settings, stages_only: bool = False) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop, stages_only)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    settings = settings_or_exit()
    log_settings = settings.log
    configure_logging(
        log_settings.level, log_settings.format, log_settings.environment, settings.version
    )
    configure_tracing(settings.telemetry, log_settings.environment, settings.version)
    if args == ["setup-search-attributes"]:
        added = asyncio.run(setup_search_attributes(settings))
        print(f"search attributes added: {added or 'none (all present)'}")
    elif args == ["stages"] and not settings.stages.simulated_stages:
        print("python -m worker stages: SIMULATED_STAGES names no stage to serve", file=sys.stderr)
        raise SystemExit(2)
    elif args in ([], ["stages"]):
        asyncio.run(_run(settings, stages_only=bool(args)))
    else:
        print("usage: python -m worker [stages | setup-search-attributes]", file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    run_then_exit(main)
