"""The kinds of repair a reconcile pass makes, and the table `python -m reconciler once` prints.

The payloads themselves (`Repair`, `ReconcilePage`, `ReconcileSummary`) live in
`activities.types`, where `ReconcileWorkflow` can import them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from activities.types import Repair

# Each is also the `kind` label of coursegen_reconciler_repairs_total.
COURSE_FAILED = "course_failed"  # an active course whose run is gone, failed
LEASE_RELEASED = "lease_released"  # a lease whose run is closed, released
LEASE_RESTORED = "lease_restored"  # an open run's missing lease, restored
WORKER_TIMEOUT = "worker_timeout"  # a started stage whose progress stopped, recorded
KINDS = (COURSE_FAILED, LEASE_RELEASED, LEASE_RESTORED, WORKER_TIMEOUT)
HEADER = ("kind", "course_id", "workflow_id", "run_id", "detail")


def counts(repairs: Sequence[Repair]) -> dict[str, int]:
    return dict(Counter(repair.kind for repair in repairs))


def table(repairs: Sequence[Repair]) -> str:
    """The repairs as an aligned text table (the header line even when there is none)."""
    rows = [HEADER] + [
        (r.kind, r.course_id or "-", r.workflow_id, r.run_id or "-", r.detail) for r in repairs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )
