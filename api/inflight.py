"""One in-flight operation per key, shared by every caller that arrives while it runs.

The first caller (the leader) starts the operation as its own task; callers that arrive before it
ends (followers) await the same task. Each caller awaits it through `asyncio.shield`, so a
caller whose request is cancelled stops waiting without cancelling the operation for the
others. The key is freed when the operation ends; the next caller starts a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class InFlight(Generic[T]):
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[T]] = {}

    async def run(
        self, key: str, operation: Callable[[], Coroutine[Any, Any, T]]
    ) -> tuple[T, bool]:
        """The operation's outcome (its result, or its exception raised) and whether this
        caller started it."""
        task = self._tasks.get(key)
        leader = task is None
        if task is None:
            task = asyncio.create_task(operation())
            self._tasks[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task), leader

    def _finished(self, key: str, task: asyncio.Task[T]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved: an outcome nobody awaited any more is not logged
