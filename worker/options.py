"""The options the workers are built with: the orchestration worker's `Worker` options from
its `WORKER_*` settings, the workflow sandbox, the shutdown grace, and the options each run's
activities get."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.converter import DataConverter
from temporalio.worker import (
    PollerBehavior,
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.types import RunOptions
from settings import Settings, WorkerSettings
from worker.runner import ContextFreeSandboxRunner, context_free

SHUTDOWN_GRACE = timedelta(seconds=10)
# Our own packages hold no per-run state, so the sandbox takes them from the host instead of
# re-executing the workflow module and its helpers for every new run: about 9 ms less CPU on each
# run's first workflow task, which is on the admission path (bench.gateway). The sandbox still
# isolates everything else, and the replay tests replay under the default, full sandbox.
PASSTHROUGH_MODULES = ("workflows", "activities", "tiers")
_RESTRICTIONS = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
# The runner for the default data converter (`worker.runner`: no sandbox call per payload).
WORKFLOW_RUNNER = ContextFreeSandboxRunner(restrictions=_RESTRICTIONS)


def run_options(settings: Settings) -> RunOptions:
    return RunOptions(
        task_queue=settings.temporal.stage_task_queue,
        start_to_close_seconds=settings.stages.start_to_close_seconds,
        heartbeat_timeout_seconds=settings.stages.heartbeat_timeout_seconds,
        cleanup_stages=list(settings.stages.cleanup_activities),
        progress_retry_seconds=settings.workflow.progress_retry_seconds,
        deadline_margin_seconds=settings.workflow.deadline_margin_seconds,
    )


def orchestration_options(
    tuning: WorkerSettings,
    *,
    data_converter: DataConverter = DataConverter.default,
    passthrough: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The orchestration worker's `Worker` options from its `WORKER_*` settings, for a client
    with `data_converter`. A workflow defined in another package (the benchmarks' baselines)
    names it in `passthrough`, so the sandbox treats it as ours."""
    return {
        "workflow_runner": workflow_runner(tuning, data_converter, passthrough),
        "max_concurrent_workflow_tasks": tuning.workflow_task_slots,
        "workflow_task_poller_behavior": pollers(tuning.workflow_task_pollers, tuning),
        "nonsticky_to_sticky_poll_ratio": tuning.nonsticky_poll_ratio,
        "max_cached_workflows": tuning.sticky_cache_size,
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=tuning.sticky_timeout_seconds),
        "max_concurrent_local_activities": tuning.local_activity_slots,
        "max_concurrent_activities": tuning.activity_slots,
        "activity_task_poller_behavior": pollers(tuning.activity_pollers, tuning),
    }


def workflow_runner(
    tuning: WorkerSettings, data_converter: DataConverter, passthrough: tuple[str, ...] = ()
) -> WorkflowRunner:
    """The sandbox with our packages (and `passthrough`) passed through; unsandboxed with
    `WORKER_WORKFLOW_SANDBOX=false`; the SDK's own sandbox runner for a converter that reads
    serialization contexts (`worker.runner`)."""
    if not tuning.workflow_sandbox:
        return UnsandboxedWorkflowRunner()
    free = context_free(data_converter)
    if free and not passthrough:
        return WORKFLOW_RUNNER
    restrictions = _RESTRICTIONS.with_passthrough_modules(*passthrough)
    runner = ContextFreeSandboxRunner if free else SandboxedWorkflowRunner
    return runner(restrictions=restrictions)


def pollers(maximum: int, tuning: WorkerSettings) -> PollerBehavior:
    """At most `maximum` polls at once; with `WORKER_POLLER_AUTOSCALING`, as many as the server's
    feedback asks for, from 1 up to that."""
    if tuning.poller_autoscaling:
        return PollerBehaviorAutoscaling(minimum=1, maximum=maximum, initial=min(5, maximum))
    return PollerBehaviorSimpleMaximum(maximum)
