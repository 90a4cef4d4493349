"""The orchestration worker's `Worker` options come from the `WORKER_*` settings, the stage
workers' tuner from the `STAGE_*` ones and uvicorn's options from the `API_*` ones, each to the
option it names (docs/operations.md, "Tuning")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.worker import (
    FixedSizeSlotSupplier,
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    ResourceBasedSlotSupplier,
    UnsandboxedWorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import worker.stages
from tests.factories import make_settings
from worker import PASSTHROUGH_MODULES, WORKFLOW_RUNNER, orchestration_options, stage_workers

TUNED = {
    "WORKER_WORKFLOW_TASK_SLOTS": "30",
    "WORKER_WORKFLOW_TASK_POLLERS": "12",
    "WORKER_NONSTICKY_POLL_RATIO": "0.25",
    "WORKER_STICKY_CACHE_SIZE": "500",
    "WORKER_LOCAL_ACTIVITY_SLOTS": "40",
    "WORKER_ACTIVITY_SLOTS": "50",
    "WORKER_ACTIVITY_POLLERS": "3",
    "WORKER_STICKY_TIMEOUT_SECONDS": "2.5",
}


def test_each_setting_reaches_its_worker_option() -> None:
    options = orchestration_options(make_settings(TUNED).worker)
    assert options == {
        "workflow_runner": WORKFLOW_RUNNER,
        "max_concurrent_workflow_tasks": 30,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(12),
        "nonsticky_to_sticky_poll_ratio": 0.25,
        "max_cached_workflows": 500,
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=2.5),
        "max_concurrent_local_activities": 40,
        "max_concurrent_activities": 50,
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(3),
    }


def test_autoscaling_pollers_scale_up_to_the_same_maxima() -> None:
    options = orchestration_options(make_settings(TUNED, WORKER_POLLER_AUTOSCALING="true").worker)
    workflow, activity = (
        options["workflow_task_poller_behavior"],
        options["activity_task_poller_behavior"],
    )
    assert workflow == PollerBehaviorAutoscaling(minimum=1, maximum=12, initial=5)
    assert activity == PollerBehaviorAutoscaling(minimum=1, maximum=3, initial=3)


def test_the_sandbox_can_be_turned_off() -> None:
    """Off: the workflow runs unsandboxed (less CPU per task); on, by default: the sandbox with
    our own packages passed through."""
    runner = orchestration_options(make_settings(WORKER_WORKFLOW_SANDBOX="false").worker)
    assert isinstance(runner["workflow_runner"], UnsandboxedWorkflowRunner)
    assert orchestration_options(make_settings().worker)["workflow_runner"] is WORKFLOW_RUNNER


def test_a_baseline_package_is_passed_through_as_ours() -> None:
    """The benchmarks' baselines get our options, with their own package passed through."""
    tuning = make_settings(TUNED).worker
    options = orchestration_options(tuning, passthrough=("bench",))
    runner = options.pop("workflow_runner")
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert runner.restrictions.passthrough_modules >= {"bench", *PASSTHROUGH_MODULES}
    assert options == {
        k: v for k, v in orchestration_options(tuning).items() if k != "workflow_runner"
    }
    unsandboxed = make_settings(WORKER_WORKFLOW_SANDBOX="false").worker
    runner = orchestration_options(unsandboxed, passthrough=("bench",))["workflow_runner"]
    assert isinstance(runner, UnsandboxedWorkflowRunner)


def test_defaults_poll_the_workflow_queue_wider_than_the_sdk() -> None:
    """A burst of new runs waits on the non-sticky polls: the defaults keep ten of them (the
    SDK's own defaults keep one, of five)."""
    tuning = make_settings().worker
    options = orchestration_options(tuning)
    pollers = options["workflow_task_poller_behavior"]
    assert isinstance(pollers, PollerBehaviorSimpleMaximum)
    assert pollers.maximum * options["nonsticky_to_sticky_poll_ratio"] >= 10


def test_uvicorn_options_come_from_the_api_settings() -> None:
    from api.__main__ import server_options

    api = make_settings(API_LOOP="asyncio", API_HTTP="h11", API_BACKLOG="64", API_PORT="9001").api
    options = server_options(api)
    assert (options["loop"], options["http"], options["backlog"]) == ("asyncio", "h11", 64)
    assert (options["host"], options["port"]) == ("127.0.0.1", 9001)


class BuiltWorker:
    """Stands in for `temporalio.worker.Worker`: keeps the options a stage worker is built with."""

    def __init__(self, client: object, **options: Any) -> None:
        self.options = options


@pytest.mark.parametrize("resource_tuner", [True, False])
def test_stage_resource_tuner_sizes_each_stage_worker_by_cpu_and_memory(
    monkeypatch: pytest.MonkeyPatch, resource_tuner: bool
) -> None:
    """`STAGE_RESOURCE_TUNER=true`: every stage worker gets a resource-based activity slot
    supplier, from 1 up to its stage's capacity; unset, a fixed one of that capacity."""
    monkeypatch.setattr(worker.stages, "Worker", BuiltWorker)
    settings = make_settings(
        SIMULATED_STAGES="structure_analysis,text_generation",
        STAGE_CAPACITY="4",
        STAGE_CAPACITY_TEXT_GENERATION="7",
        STAGE_RESOURCE_TUNER=str(resource_tuner).lower(),
    )
    built = cast(list[BuiltWorker], stage_workers(cast(Client, None), settings))
    queues = [w.options["task_queue"] for w in built]
    assert queues == [settings.temporal.stage_queue(s) for s in settings.stages.simulated_stages]
    suppliers = [w.options["tuner"]._get_activity_task_slot_supplier() for w in built]
    if resource_tuner:
        assert all(isinstance(s, ResourceBasedSlotSupplier) for s in suppliers)
        configs = [(s.slot_config.minimum_slots, s.slot_config.maximum_slots) for s in suppliers]
        assert configs == [(1, 4), (1, 7)]
    else:
        assert suppliers == [FixedSizeSlotSupplier(4), FixedSizeSlotSupplier(7)]
