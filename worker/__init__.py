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

Modules: `options` (the workers' options and the sandbox), `orchestration` and `stages` (building
the workers), `dispatch` (the webhook dispatcher), `schedule` (the reconciler's Schedule),
`connect` (waiting for the stores and Temporal), `running` (serving until a signal), `cli` (the
process's main, run by `__main__`).
"""

from worker.cli import main, setup_search_attributes
from worker.connect import connect_with_retries, open_store_pool, with_retries
from worker.dispatch import webhook_dispatcher
from worker.options import (
    PASSTHROUGH_MODULES,
    SHUTDOWN_GRACE,
    WORKFLOW_RUNNER,
    orchestration_options,
    pollers,
    run_options,
)
from worker.orchestration import build_workers
from worker.running import run_until, serve
from worker.schedule import start_reconciler
from worker.stages import stage_worker, stage_workers

__all__ = [
    "PASSTHROUGH_MODULES",
    "SHUTDOWN_GRACE",
    "WORKFLOW_RUNNER",
    "build_workers",
    "connect_with_retries",
    "main",
    "open_store_pool",
    "orchestration_options",
    "pollers",
    "run_options",
    "run_until",
    "serve",
    "setup_search_attributes",
    "stage_worker",
    "stage_workers",
    "start_reconciler",
    "webhook_dispatcher",
    "with_retries",
]
