"""SIMULATED stage handlers: the stage contract (docs/stage-contract.md) without any AI work.

Real deployments serve a stage's queue `<TEMPORAL_STAGE_TASK_QUEUE>.<stage>` with their own
handlers (any SDK language) under the same activity names and leave that stage out of
`SIMULATED_STAGES`. These simulated ones heartbeat a growing counter, honour cancellation and
read knobs from `generation_progress.simulation`:

- ``stage_seconds``: how long each stage takes (default `SIMULATED_STAGE_SECONDS`);
- ``fail_at_step``: raise a non-retryable `StageFailed` at that step;
- ``hold_at_step`` + ``hold_seconds``: that one step takes `hold_seconds` instead (tests use it
  to keep a run inside a known stage);
- ``cleanup_seconds``: how long a simulated cleanup activity takes (default 0).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows import errors
from workflows.steps import cleanup_name
from workflows.types import StageInput, StageOutput

log = logging.getLogger(__name__)


def _number(raw: object, default: float) -> float:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else default


class SimulatedStages:
    """SIMULATED handlers for every stage (and its cleanup); no real generation happens."""

    def __init__(self, default_stage_seconds: float) -> None:
        self._default_seconds = default_stage_seconds

    def for_stage(self, stage: str, cleanup: bool) -> list[Callable[..., Any]]:
        """What the worker of `stage`'s queue registers: the stage, and its cleanup if asked."""
        handlers = [self._handler(stage)]
        return [*handlers, self._cleanup_handler(stage)] if cleanup else handlers

    def _handler(self, stage: str) -> Callable[..., Any]:
        async def simulated_stage(inp: StageInput) -> StageOutput:
            return await self.run_stage(stage, inp)

        return activity.defn(name=stage)(simulated_stage)

    def _cleanup_handler(self, stage: str) -> Callable[..., Any]:
        async def simulated_cleanup(inp: StageInput) -> None:
            await heartbeat_for(_number(inp.simulation.get("cleanup_seconds"), 0))
            log.info("simulated cleanup", extra={"stage": stage, "course_id": inp.course_id})

        return activity.defn(name=cleanup_name(stage))(simulated_cleanup)

    async def run_stage(self, stage: str, inp: StageInput) -> StageOutput:
        sim = inp.simulation
        if sim.get("fail_at_step") == inp.step_id:
            raise ApplicationError(
                f"simulated failure at step {inp.step_id} ({stage})",
                {"stage": stage, "step_id": inp.step_id},
                type=errors.STAGE_FAILED,
                non_retryable=True,
            )
        seconds = _number(sim.get("stage_seconds"), self._default_seconds)
        if sim.get("hold_at_step") == inp.step_id:
            seconds = _number(sim.get("hold_seconds"), seconds)
        try:
            await heartbeat_for(seconds)
        except asyncio.CancelledError:
            log.info(
                "simulated stage cancelled", extra={"stage": stage, "course_id": inp.course_id}
            )
            raise
        return StageOutput(
            summary=f"SIMULATED {stage}", metadata={"simulated": True, "seconds": seconds}
        )


async def heartbeat_for(seconds: float) -> None:
    """Sleep `seconds`, heartbeating often enough for the call's heartbeat timeout.

    Each heartbeat's details are a growing counter (1, 2, …): the progress a real handler
    reports there, so a working stage can be told from a stuck one. A zero-length wait returns
    at once without heartbeating: the activity completes before any heartbeat could matter, and
    each heartbeat is an RPC and a history-shard write (4 a run).
    """
    if seconds <= 0:
        return
    timeout = activity.info().heartbeat_timeout
    interval = max(0.05, timeout.total_seconds() / 4) if timeout else 1.0
    deadline = time.monotonic() + seconds
    beats = 1
    activity.heartbeat(beats)
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(interval, remaining))
        beats += 1
        activity.heartbeat(beats)
