"""The reconciler: keeps PostgreSQL and Redis in agreement with Temporal, which is the truth
about which runs are open.

- `reconciler.core`      one pass, page by page, and the repairs it makes.
- `reconciler.runs`      what Temporal says about runs (visibility, then a describe).
- `reconciler.progress`  how long a started stage's heartbeat details have stayed the same.
- `reconciler.repairs`   the kinds of repair and the printed table.
- `reconciler.schedule`  the Temporal Schedule and the on-demand pass.
- `reconciler.wiring`    a `Reconciler` from the settings.

`python -m reconciler once` runs one pass in this process and prints what it repaired;
`ReconcileWorkflow` (workflows/reconcile.py) runs passes in Temporal.
"""
