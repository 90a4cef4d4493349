"""The launcher's wait for pollers: on the workflow queue and on every stage's queue."""

from __future__ import annotations

import time

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.client import Client

import temporal_connect
from settings import Settings
from workflows.steps import STAGE_NAMES

WORKFLOW = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
ACTIVITY = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY


class QueuesPolled:
    """Awaited, whether every queue a run needs has a poller now.

    The queues our worker serves (the workflow queue, the simulated stages' queues) count only
    pollers seen since `since`, when the launcher started it: a worker of an earlier launch that
    has just stopped is still listed. The other stages' queues are served by another fleet,
    whose pollers count when the server saw them within the usual window.
    """

    def __init__(self, client: Client, settings: Settings, since: float) -> None:
        temporal, simulated = settings.temporal, settings.stages.simulated_stages
        self._client, self._since = client, since
        self._ours = [(temporal.task_queue, WORKFLOW)]
        self._ours += [(temporal.stage_queue(stage), ACTIVITY) for stage in simulated]
        others = [stage for stage in STAGE_NAMES if stage not in simulated]
        self._others = [(temporal.stage_queue(stage), ACTIVITY) for stage in others]
        self.idle: str | None = None  # the first queue found without a poller

    def describe(self) -> str:
        """What the launcher waits for, naming the queue it last found idle."""
        if self.idle is None:
            return "a poller on the workflow queue and on every stage queue"
        fleet = " (served by another fleet)" if self.idle in dict(self._others) else ""
        return f"a poller on task queue {self.idle}{fleet}"

    async def __call__(self) -> bool:
        since_start = time.time() - self._since
        window = temporal_connect.POLLER_SEEN_WITHIN_SECONDS
        checks = [(*queue, since_start) for queue in self._ours]
        checks += [(*queue, window) for queue in self._others]
        for queue, kind, within in checks:
            try:
                pollers = await temporal_connect.live_pollers(
                    self._client, queue, kind, seen_within_seconds=within
                )
            except Exception:  # the server restarting or busy: ask again
                return False
            if not pollers:
                self.idle = queue
                return False
        self.idle = None
        return True
