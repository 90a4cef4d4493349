"""`python -m bench twin`: two gateways and two workers as separate processes against one dev
server, next to one of each, with the admission invariants sampled while the starts run.

Each phase starts `BENCH_TWIN_STARTS` courses (default 1,000: `BENCH_TWIN_USERS` users, default
100, a quarter per tier FREE/BASIC/STANDARD/PREMIUM, with the same number of courses each, stages
of 1 s) from `BENCH_TWIN_CLIENTS` clients (default 30) as `bench.burst` does (a 503 retried
after `Retry-After`; 202, 200, 429 answers). First one gateway (`python -m api`) and one worker
(`python -m worker`); then a second of each joins and the requests alternate between the two
gateways (a retry goes to the other one).

While both phases run, a sampler reads every lease from Redis and the course rows and checks:
no user holds more leases than the tier allows; every lease belongs to a run that is open (its
course row claimed by that run and active, or Temporal describes the run as running; a lease
whose run closed is a violation only if it is still there when read again). After each phase:
no lease left and no course left in an active status. Reported: violations (target 0), samples
taken, answered starts/s and completions/s of each phase and the twin's ratio to the single.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import subprocess
import uuid

import asyncpg
import httpx
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from admission import GlobalHolder, Leases
from bench import processes
from bench.burst import TERMINAL, TIERS, Burst, new_jobs, our_burst, until_pollers
from bench.common import local_stack
from settings import Settings
from tests import factories
from tiers import Tier
from workflows.types import course_id_of

USERS = int(os.environ.get("BENCH_TWIN_USERS", "100"))
STARTS = int(os.environ.get("BENCH_TWIN_STARTS", "1000"))
CLIENTS = int(os.environ.get("BENCH_TWIN_CLIENTS", "30"))
SAMPLE_EVERY = 0.2  # seconds between two samples


@dataclasses.dataclass
class Sampler:
    """Checks the admission invariants from Redis, the rows and Temporal, over and over."""

    leases: Leases
    pool: asyncpg.Pool
    client: Client
    settings: Settings
    samples: int = 0
    leases_seen: int = 0
    violations: list[str] = dataclasses.field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)

    async def sample(self) -> None:
        holders = await self.leases.holders()
        self.samples += 1
        self.leases_seen += len(holders)
        await self._per_user(holders)
        rows = await self._rows(holders)
        for lease in holders:
            row = rows.get(course_id_of(lease.holder))
            claimed = row is not None and row["run_id"] == lease.run_id
            if claimed and row is not None and row["status"] not in (None, *TERMINAL):
                continue
            if not await self._run_open(lease) and await self._still_held(lease):
                self.violations.append(f"lease of closed run {lease.holder}/{lease.run_id}")

    async def _per_user(self, holders: list[GlobalHolder]) -> None:
        per_user = collections.Counter(lease.user_id for lease in holders)
        tiers = await self._tiers(list(per_user))
        for user, count in per_user.items():
            limit = self.settings.admission.policy(tiers[user]).limit
            if count > limit:
                self.violations.append(f"user {user} ({tiers[user].value}) holds {count} > {limit}")

    async def _tiers(self, users: list[str]) -> dict[str, Tier]:
        rows = await self.pool.fetch(
            "SELECT id::text AS id, tier FROM public.user_profiles WHERE id = ANY($1::uuid[])",
            users,
        )
        return {row["id"]: Tier(row["tier"]) for row in rows}

    async def _rows(self, holders: list[GlobalHolder]) -> dict[str, asyncpg.Record]:
        rows = await self.pool.fetch(
            "SELECT id::text AS id, generation_status::text AS status, run_id"
            " FROM public.courses WHERE id = ANY($1::uuid[])",
            [course_id_of(lease.holder) for lease in holders],
        )
        return {row["id"]: row for row in rows}

    async def _run_open(self, lease: GlobalHolder) -> bool:
        handle = self.client.get_workflow_handle(lease.holder, run_id=lease.run_id or None)
        try:
            described = await handle.describe()
        except RPCError:
            return False
        return described.status == WorkflowExecutionStatus.RUNNING

    async def _still_held(self, lease: GlobalHolder) -> bool:
        return any(
            h.holder == lease.holder and h.run_id == lease.run_id
            for h in await self.leases.holders()
        )

    async def after(self, label: str) -> None:
        """At a phase's end: no lease left, no course left active."""
        left = await self.leases.holders()
        if left:
            self.violations.append(f"{label}: {len(left)} lease(s) left after the end")
        active = await self.pool.fetchval(
            "SELECT count(*) FROM public.courses WHERE generation_status IS NOT NULL"
            " AND NOT generation_status::text = ANY($1::text[])",
            list(TERMINAL),
        )
        if active:
            self.violations.append(f"{label}: {active} course(s) left in an active status")


async def phase(
    gateways: list[httpx.AsyncClient], pool: asyncpg.Pool, sampler: Sampler, label: str
) -> Burst:
    users_per_tier = max(1, USERS // len(TIERS))
    jobs = await new_jobs(pool, users_per_tier, max(1, STARTS // (users_per_tier * len(TIERS))))
    before = len(sampler.violations)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    try:
        burst = await our_burst(gateways, pool, jobs, CLIENTS, label)
        await asyncio.sleep(1)  # the last runs release their leases and close
    finally:
        stop.set()
        await sampling
    await sampler.after(label)
    print(
        f"  {burst.line()}\n  {burst.finish_line()}\n"
        f"  {'':<34} invariant violations: {len(sampler.violations) - before}",
        flush=True,
    )
    return burst


def completions(burst: Burst) -> float:
    return len(burst.admitted) / burst.finished_seconds


async def main() -> None:
    queue = f"bench-twin-{uuid.uuid4().hex[:8]}"
    async with local_stack("twin") as stack:
        env = await processes.stack_env(stack, queue)
        settings = factories.make_settings(env)
        leases = Leases(stack.redis, settings.stores.redis_key_prefix)
        sampler = Sampler(leases, stack.pool, stack.env.client, settings)
        print(
            f"twin benchmark: {STARTS} starts over {USERS} users from {CLIENTS} clients per "
            f"phase, invariants sampled every {SAMPLE_EVERY:g} s; gateways and workers as "
            f"processes, one dev server (in-memory), {stack.pg.source} PostgreSQL, "
            f"{stack.redis_store.source} Redis",
            flush=True,
        )
        procs: list[subprocess.Popen[bytes]] = [processes.worker_process(env)]
        gateways: list[httpx.AsyncClient] = []
        results: list[Burst] = []
        with processes.stopped_at_exit(procs):
            try:
                for count in (1, 2):
                    if count == 2:
                        procs.append(processes.worker_process(env))
                        await until_pollers(stack.env.client, queue, 2)
                    http, api = await processes.gateway(env, CLIENTS)
                    gateways.append(http)
                    procs.append(api)
                    label = f"{count} gateway(s), {count} worker(s)"
                    results.append(await phase(gateways, stack.pool, sampler, label))
            finally:
                for http in gateways:
                    await http.aclose()
        single, twin = results
        print(
            f"  invariant violations: {len(sampler.violations)} in {sampler.samples} samples "
            f"of {sampler.leases_seen} leases (target 0)"
            + "".join(f"\n    VIOLATION {line}" for line in sampler.violations[:20]),
        )
        print(
            f"  two of each vs one: starts/s {twin.rate:.1f} vs {single.rate:.1f} "
            f"({twin.rate / single.rate:.2f}x), completions/s {completions(twin):.2f} vs "
            f"{completions(single):.2f} ({completions(twin) / completions(single):.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
