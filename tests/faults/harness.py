"""One fault scenario: start a workload through the gateway, let the test inject its fault,
then wait (bounded) until every invariant holds again and report how long that took and what
the reconciler repaired."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.faults import invariants, workload
from tests.faults.invariants import LeaseSampler, World
from tests.faults.stack import FaultStack
from tests.faults.workload import Planned, Started
from tests.helpers import eventually

# One line per fault, printed at the end of the session.
REPORT: list[str] = []


@dataclass
class Scenario:
    stack: FaultStack
    name: str
    sampler: LeaseSampler
    planned: list[Planned] = field(default_factory=list)
    started: list[Started] = field(default_factory=list)
    fault_started: float = field(default_factory=time.time)
    fault_ended: float | None = None  # monotonic

    @property
    def world(self) -> World:
        assert self.stack.pool is not None
        assert self.stack.client is not None
        return World(self.stack.pool, self.stack.client, self.stack.leases)

    def http(self, base_url: str | None = None) -> httpx.AsyncClient:
        base = base_url or f"http://127.0.0.1:{self.stack.api.env['API_PORT']}"
        limits = httpx.Limits(max_connections=100)
        return httpx.AsyncClient(base_url=base, timeout=30, limits=limits)

    async def plan(
        self,
        mix: Sequence[tuple[str, int, int]] = workload.MIX,
        simulation: Mapping[str, Any] | None = None,
    ) -> list[Planned]:
        assert self.stack.pool is not None
        planned = await workload.plan(self.stack.pool, mix, simulation)
        self.planned += planned
        self.sampler.watch(planned, self.stack.settings.admission)
        return planned

    async def start(self, planned: Sequence[Planned], base_url: str | None = None) -> None:
        async with self.http(base_url) as http:
            self.started += await workload.start_all(http, planned)

    @property
    def admitted(self) -> list[Planned]:
        return workload.admitted(self.started)

    def fault(self) -> None:
        """Mark the fault's start (repairs are counted from here)."""
        self.fault_started = time.time()

    def healed(self) -> None:
        """Mark the fault's end (the time to converge is counted from here)."""
        self.fault_ended = time.monotonic()

    async def converge(self) -> float:
        """Wait until every invariant holds, at most the suite's bound after the fault ended
        (`healed()`, else now); report and return the seconds it took."""
        ended = self.fault_ended or time.monotonic()
        self.stack.check_alive()

        async def holds() -> None:
            problems = await invariants.check(self.world, self.admitted, self.sampler)
            assert not problems, "\n".join(problems[:20])

        left = self.stack.converge_seconds - (time.monotonic() - ended)
        try:
            await eventually(holds, timeout=max(left, 0), interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.worker_tail()}") from None
        took = time.monotonic() - ended
        await self.report(took)
        return took

    def worker_tail(self, lines: int = 15) -> str:
        """The last lines of the worker's log (warnings and errors on the suite's settings:
        reconciler repairs, failed activities), so a test that did not converge says what the
        worker was doing; the whole log is kept with `FAULTS_KEEP`."""
        text = self.stack.worker.log.read_text(errors="replace").splitlines()
        return "worker log, last lines:\n" + "\n".join(line[:400] for line in text[-lines:])

    async def report(self, took: float) -> None:
        assert self.stack.pool is not None
        repairs = await invariants.repairs_since(self.stack.pool, self.fault_started)
        statuses = await self.final_statuses()
        found = Counter(_found(r["metadata"]) for r in repairs)
        REPORT.append(
            f"{self.name:<34} converged {took:5.1f} s after the fault ended;"
            f" {len(repairs)} orphaned_job_recovery {dict(found) or ''};"
            f" reconciler repairs {dict(self.logged_repairs()) or 'none'};"
            f" starts {workload.summary(self.started)}; runs {dict(statuses)};"
            f" lease samples {self.sampler.samples} (gaps {self.sampler.gaps})"
        )

    def logged_repairs(self) -> Counter[str]:
        """The reconciler's repairs by kind since the fault started, from the worker's log
        (every repair is logged as one `reconciler repair` line)."""
        since = datetime.fromtimestamp(self.fault_started, UTC).isoformat()
        kinds: Counter[str] = Counter()
        for line in self.stack.worker.log.read_text(errors="replace").splitlines():
            if '"reconciler repair"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("timestamp", "") >= since[:26]:
                    kinds[str(entry.get("kind"))] += 1
        return kinds

    async def final_statuses(self) -> Counter[str]:
        assert self.stack.pool is not None
        rows = await self.stack.pool.fetch(
            "SELECT generation_status::text AS s FROM public.courses WHERE id::text = ANY($1)",
            [p.course_id for p in self.admitted],
        )
        return Counter(str(r["s"]) for r in rows)


def _found(metadata: Any) -> str:
    """A repair record's headline: what was found and what was repaired."""
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    if not isinstance(metadata, dict):
        return str(metadata)
    return f"{metadata.get('found')} -> {'+'.join(metadata.get('repairs') or [])}"
