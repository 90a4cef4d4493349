"""A small saga: undo actions registered before their step, run once each, in reverse."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from temporalio import workflow

Undo = Callable[[], Awaitable[None]]


@dataclass
class SagaReport:
    undone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Saga:
    """Each undo must be idempotent: its step may have run, half-run or not run at all."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Undo]] = []
        self._done = False

    def add(self, name: str, undo: Undo) -> None:
        self._undo.append((name, undo))

    async def compensate(self) -> SagaReport:
        """Run every registered undo once, newest first; a failing undo does not stop the rest."""
        report = SagaReport()
        if self._done:
            return report
        self._done = True
        for name, undo in reversed(self._undo):
            try:
                await undo()
            except Exception as exc:
                workflow.logger.error("compensation %s failed: %s", name, exc)
                report.failed.append(name)
            else:
                report.undone.append(name)
        return report
