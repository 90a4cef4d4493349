"""What Temporal said about closed runs, kept by the gateway so a status read of a finished
course needs no describe.

A closed run's status never changes, so its describe is kept under (workflow id, run id), at
most `CLOSED_RUN_CACHE_SIZE` entries (least recently read leaves first) for at most
`CLOSED_RUN_CACHE_TTL_SECONDS` (after namespace retention Temporal forgets a run; the ttl
bounds how long a read still reports it). Only closed runs enter: a run Temporal reports
RUNNING is described live on every read. The values are Temporal's own answers, never derived
from the course row.

Per workflow id the cache also remembers its latest closed run (`closed_latest`), so a status
read can tell before reading the row that the course's run has probably ended and skip the
describe it would otherwise send alongside the row read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from api.lru import LruCache

T = TypeVar("T")
RunKey = tuple[str, str]  # (workflow id, run id)


class ClosedRuns(Generic[T]):
    def __init__(
        self, size: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._runs: LruCache[RunKey, T] = LruCache(size, clock)
        self._latest: LruCache[str, str] = LruCache(size, clock)  # workflow id -> run id

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, key: RunKey) -> T | None:
        """The kept describe of the closed run `key`, or None (never kept, evicted, expired)."""
        return self._runs.get(key)

    def put(self, key: RunKey, closed: T) -> None:
        """Keep the describe of `key`, a run Temporal reported closed."""
        self._runs.put(key, closed, self._ttl)
        self._latest.put(key[0], key[1], self._ttl)

    def closed_latest(self, workflow_id: str) -> bool:
        """Whether the last run of `workflow_id` this cache heard of was closed (and is kept)."""
        run_id = self._latest.get(workflow_id)
        return run_id is not None and self._runs.get((workflow_id, run_id)) is not None

    def saw_open(self, workflow_id: str) -> None:
        """A run of `workflow_id` is open (a regeneration): its closed runs stay kept, but the
        workflow's latest run is no longer known to be closed."""
        self._latest.pop(workflow_id)
