"""The garbage collector of the long-running processes (the gateway, the workers).

CPython's full collection walks every container object the process holds. Most of a worker's or
gateway's objects are built at start-up (modules, classes, settings, connection pools) and live
as long as the process, yet each full collection walked them again: in `python -m worker` about
110,000 of them (160,000 once its first runs were cached), a pause of ~150 ms on its event loop
during which every start in flight waited (docs/operations.md, "Tuning").
`freeze_start_up_heap` moves them out of the collector's way.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_start_up_heap() -> int:
    """Collect once, then move every object alive now into the collector's permanent generation,
    which later collections skip; returns how many objects that is. Call it once, when start-up
    is done: a frozen object is still freed when its last reference goes, but a reference
    cycle among frozen objects is never collected."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("start-up heap frozen", extra={"objects": frozen})
    return frozen
