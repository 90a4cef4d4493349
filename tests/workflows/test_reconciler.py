"""The reconciler against the real stores and dev server: each repair, idempotence, the epoch
rule, the Schedule and `python -m reconciler once`.

The module has a database of its own, so a pass sees only the courses these tests made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import Client, ScheduleIntervalSpec, ScheduleOverlapPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

import embedded
import observability
import temporal_connect
from activities import types as act
from activities.types import ReconcileCursor, ReconcilePage, ReconcileSummary, ReconcileToken
from db.pool import create_pool
from reconciler.core import Reconciler
from reconciler.runs import RunLookup, RunState
from reconciler.schedule import SCHEDULE_ID, TRIGGERED_ID, start_pass
from reconciler.wiring import build_reconciler
from settings import Settings
from tests.api.observed import scrape, value
from tests.factories import insert_course, insert_user, make_settings
from tests.helpers import eventually, migrated_database
from tests.workflows.support import ROOT, Stack, Stacks
from worker import stage_worker, start_reconciler
from workflows.reconcile import PAGE_HEARTBEAT, ReconcileWorkflow
from workflows.types import workflow_id_for

HOLD = {"stage_seconds": 60}  # a run that stays in its first stage


@pytest_asyncio.fixture(scope="module")
async def own_database(pg_server: embedded.Store) -> AsyncIterator[str]:
    name = f"cg_test_reconcile_{uuid.uuid4().hex[:8]}"
    async with migrated_database(pg_server.url, name) as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def own_pool(own_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(own_database, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
def own_stacks(
    temporal_client: Client, own_pool: asyncpg.Pool, own_database: str, redis_url: str,
    key_prefix: str, task_queue: str,
) -> Stacks:  # fmt: skip
    return Stacks(temporal_client, own_pool, own_database, redis_url, key_prefix, task_queue)


@pytest_asyncio.fixture
async def stack(own_stacks: Stacks) -> AsyncIterator[Stack]:
    async with own_stacks.open(RECONCILE_GRACE_SECONDS="0", STUCK_AFTER_SECONDS="1") as opened:
        yield opened


def reconciler_of(stack: Stack) -> Reconciler:
    redis = stack.leases._redis
    return build_reconciler(stack.settings, stack.pool, redis, stack.client)


async def two_passes(stack: Stack) -> ReconcileSummary:
    """A pass, and a second right after that repairs nothing."""
    first = await reconciler_of(stack).run_pass()
    second = await reconciler_of(stack).run_pass()
    assert second.repairs == [], second.repairs
    assert first.epoch_written
    assert second.epoch_written
    return first


async def wait_status(stack: Stack, course_id: str, status: str) -> None:
    async def reached() -> None:
        row = await stack.repository.get_course(course_id)
        assert row is not None
        assert row.generation_status == status, row

    await eventually(reached, timeout=30)


async def metrics(stack: Stack, course_id: str, event: str) -> list[dict[str, Any]]:
    return [row["metadata"] for row in await stack.metrics(course_id, event)]


async def test_a_terminated_run_fails_its_course_and_frees_its_lease_once(stack: Stack) -> None:
    """Terminated mid-stage: the row becomes `failed` naming the terminate, the lease is gone,
    one `orphaned_job_recovery` lists both repairs and TERMINATED; a second pass does nothing."""
    course = await stack.create_course(tier="FREE", simulation=HOLD)
    admitted, handle = await stack.start(course)
    assert admitted.decision == "admitted"
    await wait_status(stack, course.course_id, "analyzing_task")
    await handle.terminate("operator")
    summary = await two_passes(stack)
    kinds = sorted((r.kind, r.course_id) for r in summary.repairs)
    assert kinds == [("course_failed", course.course_id), ("lease_released", course.course_id)]
    row = await stack.repository.get_course(course.course_id)
    assert row is not None
    assert row.generation_status == "failed"
    assert row.error_message is not None
    assert "terminated" in row.error_message
    assert await stack.leases.usage(course.user_id) == []
    [recovery] = await metrics(stack, course.course_id, "orphaned_job_recovery")
    assert recovery["temporal_status"] == "TERMINATED"
    assert recovery["run_id"] == admitted.run_id
    assert sorted(recovery["repairs"]) == ["course_failed", "lease_released"]


class CountedLookups(RunLookup):
    """`RunLookup` that remembers the workflow ids of each visibility query."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.queried: list[list[str]] = []

    async def open_among(self, workflow_ids: Sequence[str]) -> dict[str, str]:
        self.queried.append(list(workflow_ids))
        return await super().open_among(workflow_ids)


async def test_within_the_grace_a_closed_runs_lease_is_freed_and_vouched_leases_cost_no_query(
    own_stacks: Stacks,
) -> None:
    """A terminated run's course waits out `RECONCILE_GRACE_SECONDS`, but its lease is freed by
    the first pass; a running run's lease, vouched for by its active course, is looked up in
    visibility once (its course page), not again by the lease page."""
    async with own_stacks.open(RECONCILE_GRACE_SECONDS="3600") as stack:
        ended = await stack.create_course(tier="PREMIUM", simulation=HOLD)
        running = await stack.create_course(tier="PREMIUM", simulation=HOLD)
        handles = []
        for course in (ended, running):
            admitted, handle = await stack.start(course)
            assert admitted.decision == "admitted"
            await wait_status(stack, course.course_id, "analyzing_task")
            handles.append(handle)
        await handles[0].terminate("operator")
        base = reconciler_of(stack)
        lookups = CountedLookups(stack.client)
        reconciler = Reconciler(dataclasses.replace(base._s, runs=lookups), base._policy)
        summary = await reconciler.run_pass()
        ended_id = workflow_id_for(ended.course_id)
        assert [(r.kind, r.workflow_id, r.detail) for r in summary.repairs] == [
            ("lease_released", ended_id, "TERMINATED")
        ]
        row = await stack.repository.get_course(ended.course_id)
        assert row is not None
        assert row.generation_status == "analyzing_task"  # the course waits out the grace
        assert [h.holder for h in await stack.leases.usage(running.user_id)] == [
            workflow_id_for(running.course_id)
        ]
        running_id = workflow_id_for(running.course_id)
        assert sum(running_id in ids for ids in lookups.queried) == 1, lookups.queried
        assert (await reconciler_of(stack).run_pass()).repairs == []
        await handles[1].terminate("test over")
        await stack.pool.execute(
            "UPDATE public.courses SET generation_status = 'failed' WHERE id = ANY($1::uuid[])",
            [ended.course_id, running.course_id],
        )


async def test_a_lease_left_for_a_closed_or_missing_run_is_released(stack: Stack) -> None:
    """Leases written by hand for a completed run and for a workflow that never existed are
    released by one pass; the run's own course is left alone."""
    course = await stack.create_course(tier="PREMIUM")
    admitted, handle = await stack.start(course)
    await handle.result()
    closed = admitted.run_id
    started = time.time() - 10
    far = time.time() + 3600
    await stack.leases.restore(course.user_id, workflow_id_for(course.course_id),
                               _run(closed, started), far, started)  # fmt: skip
    ghost = workflow_id_for(str(uuid.uuid4()))
    await stack.leases.restore("someone", ghost, _run("no-such-run", started), far, started)
    summary = await two_passes(stack)
    released = sorted((r.kind, r.workflow_id, r.detail) for r in summary.repairs)
    assert released == sorted(
        [
            ("lease_released", workflow_id_for(course.course_id), "COMPLETED"),
            ("lease_released", ghost, "NOT_FOUND"),
        ]
    )
    assert await stack.leases.holders() == []


async def test_an_active_course_without_any_run_is_failed_saying_so(stack: Stack) -> None:
    """A row set to an active status by hand, with no workflow at all, is failed by a pass run
    as `ReconcileWorkflow` in Temporal, with a message saying no run exists."""
    await reconciler_of(stack).run_pass()  # the other tests' leftovers out of the way
    user = await insert_user(stack.pool, "FREE")
    course_id = await insert_course(stack.pool, user, status="analyzing_task")
    await start_pass(stack.client, stack.settings.temporal.task_queue)
    handle = stack.client.get_workflow_handle(TRIGGERED_ID, result_type=ReconcileSummary)
    summary = await handle.result()
    assert [(r.kind, r.course_id) for r in summary.repairs] == [("course_failed", course_id)]
    row = await stack.repository.get_course(course_id)
    assert row is not None
    assert row.generation_status == "failed"
    assert row.error_message == "Generation stopped: no workflow run exists"
    [recovery] = await metrics(stack, course_id, "orphaned_job_recovery")
    assert (recovery["temporal_status"], recovery["repairs"]) == ("NOT_FOUND", ["course_failed"])


async def test_lost_leases_refuse_starts_until_a_pass_restores_them(stack: Stack) -> None:
    """Redis loses everything with a run in flight: a start of the same user is `unavailable`
    (never admitted) and asks for a pass, which restores the run's lease with its remaining ttl
    and writes the epoch; the same start is then refused at the limit."""
    course = await stack.create_course(tier="FREE", simulation=HOLD)
    admitted, handle = await stack.start(course)
    await wait_status(stack, course.course_id, "analyzing_task")
    described = await handle.describe()
    redis = stack.leases._redis
    await redis.delete(*[key async for key in redis.scan_iter(match=stack.leases.keys.pattern())])
    second = await stack.create_course(tier="FREE", user_id=course.user_id)
    refused, _ = await stack.start(second)
    assert (refused.decision, refused.unavailable) == ("unavailable", "redis")
    triggered = stack.client.get_workflow_handle(TRIGGERED_ID, result_type=ReconcileSummary)
    summary = await triggered.result()
    assert [(r.kind, r.run_id) for r in summary.repairs] == [("lease_restored", admitted.run_id)]
    assert summary.epoch_written
    [lease] = await stack.leases.holders()
    timeout = stack.settings.workflow.execution_timeout_seconds
    assert lease.expires_at == pytest.approx(described.start_time.timestamp() + timeout, abs=1)
    assert (lease.holder, lease.run_id) == (workflow_id_for(course.course_id), admitted.run_id)
    assert (await reconciler_of(stack).run_pass()).repairs == []
    third, _ = await stack.start(second)
    assert (third.decision, third.reason) == ("rejected", "user_limit")
    await handle.terminate("done")


class EndingWhileDescribed(RunLookup):
    """Visibility and describe as they are, except that the run writes its end (as its last
    step does: the row first, then the lease freed) while the pass describes it."""

    def __init__(self, client: Client, ending: Callable[[], Awaitable[None]]) -> None:
        super().__init__(client)
        self._ending: Callable[[], Awaitable[None]] | None = ending

    async def open_among(self, workflow_ids: Sequence[str]) -> dict[str, str]:
        return {}  # the pass describes every row it checks

    async def describe(self, workflow_id: str, run_id: str | None) -> RunState:
        state = await super().describe(workflow_id, run_id)
        if self._ending is not None:
            ending, self._ending = self._ending, None
            await ending()
        return state


async def test_a_lease_restored_as_its_run_ends_is_taken_back(stack: Stack) -> None:
    """A pass finds an open run's lease missing because the run has just freed it after
    writing its end, which the pass read too early: the lease it restores is taken back at
    once, never left behind a run that is about to close; no repair is reported."""
    course = await stack.create_course(tier="PREMIUM", simulation=HOLD)
    admitted, handle = await stack.start(course)
    await wait_status(stack, course.course_id, "analyzing_task")
    workflow_id = workflow_id_for(course.course_id)
    await stack.leases.release(course.user_id, workflow_id, admitted.run_id)

    async def ending() -> None:
        await stack.repository.finish_generation(
            course.course_id, admitted.run_id, "failed", "ended while the pass looked"
        )

    plain = reconciler_of(stack)
    runs = EndingWhileDescribed(stack.client, ending)
    racing = Reconciler(dataclasses.replace(plain._s, runs=runs), plain._policy)
    page = await racing.courses_page("")
    assert [r for r in page.repairs if r.course_id == course.course_id] == []
    assert await stack.leases.usage(course.user_id) == []
    await handle.terminate("done")


async def test_a_pass_on_the_worker_counts_its_repairs_on_its_metrics_port(
    own_stacks: Stacks,
) -> None:
    """A pass run by the workers `worker.build_workers` makes, on a client whose runtime serves
    the metrics port (as `python -m worker` connects): a scrape of that port sees
    `coursegen_reconciler_repairs_total{kind}` move by the pass's one repair."""
    port = embedded.free_port()
    runtime = observability.metrics_runtime(port, "127.0.0.1")
    env = own_stacks.env(RECONCILE_GRACE_SECONDS="0")
    client = await temporal_connect.connect(make_settings(env).temporal, runtime=runtime)
    metered = dataclasses.replace(own_stacks, client=client)
    metrics, repairs = f"http://127.0.0.1:{port}/metrics", "coursegen_reconciler_repairs_total"
    async with metered.open(env) as stack, httpx.AsyncClient() as http:
        await reconciler_of(stack).run_pass()  # the other tests' leftovers, not counted
        started = time.time() - 10
        ghost = workflow_id_for(str(uuid.uuid4()))
        await stack.leases.restore("someone", ghost, _run("gone", started), started + 3600, started)
        before = await scrape(http, metrics)
        await start_pass(client, stack.settings.temporal.task_queue)
        handle = client.get_workflow_handle(TRIGGERED_ID, result_type=ReconcileSummary)
        summary = await handle.result()
        assert [(r.kind, r.workflow_id) for r in summary.repairs] == [("lease_released", ghost)]

        async def counted() -> None:
            after = await scrape(http, metrics)
            released = {"kind": "lease_released"}
            assert value(after, repairs, **released) - value(before, repairs, **released) == 1

        await eventually(counted)


@activity.defn(name="structure_analysis")
async def silent_stage(_: Any) -> None:
    """A stage that heartbeats the same details forever: alive, but making no progress."""
    while True:
        activity.heartbeat("same")
        await asyncio.sleep(0.2)


async def test_a_started_stage_without_progress_is_flagged_once_a_backlogged_one_never(
    own_stacks: Stacks,
) -> None:
    """With one slot, one run's stage is STARTED (and silent) and another's waits in the
    backlog: after STUCK_AFTER_SECONDS of the same heartbeat details the first gets exactly
    one `worker_timeout` (warn); the waiting one gets none."""
    env = own_stacks.env(RECONCILE_GRACE_SECONDS="0", STUCK_AFTER_SECONDS="1",
                         SIMULATED_STAGES="none", STAGE_HEARTBEAT_TIMEOUT_SECONDS="5")  # fmt: skip
    async with own_stacks.open(env) as stack:
        queue = stack.settings.temporal.stage_queue("structure_analysis")
        async with stage_worker(stack.client, queue, [silent_stage], capacity=1):
            started = await stack.create_course(tier="PREMIUM")
            waiting = await stack.create_course(tier="PREMIUM")
            runs = [await stack.start(started), await stack.start(waiting)]
            await wait_status(stack, waiting.course_id, "analyzing_task")
            await asyncio.sleep(1.2)  # both rows idle for STUCK_AFTER_SECONDS: now checked
            await reconciler_of(stack).run_pass()  # notes the started stage's details
            await asyncio.sleep(1.2)
            flagged = await reconciler_of(stack).run_pass()
            again = await reconciler_of(stack).run_pass()
            for _, handle in runs:
                await handle.terminate("done")
    ids = {started.course_id, waiting.course_id}
    assert [(r.kind, r.course_id) for r in flagged.repairs if r.course_id in ids] == [
        ("worker_timeout", started.course_id)
    ]
    assert [r for r in again.repairs if r.course_id in ids] == []
    [timeout] = await metrics(stack, started.course_id, "worker_timeout")
    assert (timeout["stage"], timeout["source"]) == ("structure_analysis", "reconciler")
    assert await metrics(stack, waiting.course_id, "worker_timeout") == []


async def test_the_schedule_follows_the_interval_setting(stack: Stack) -> None:
    """At worker start the Schedule is created with the interval, SKIP overlap and the
    workflow task queue; restarted with another interval it is updated; with 0 it is gone."""
    settings = interval(stack, 7)
    await start_reconciler(stack.client, settings)
    handle = stack.client.get_schedule_handle(SCHEDULE_ID)
    described = await handle.describe()
    assert described.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(seconds=7))]
    assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    action = described.schedule.action
    assert getattr(action, "task_queue", None) == settings.temporal.task_queue
    assert getattr(action, "workflow", None) == "ReconcileWorkflow"
    await start_reconciler(stack.client, interval(stack, 9))
    updated = await handle.describe()
    assert updated.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(seconds=9))]
    await start_reconciler(stack.client, interval(stack, 0))
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND


async def test_reconciler_once_prints_its_repairs(stack: Stack) -> None:
    """`python -m reconciler once` with the worker's environment runs a pass and prints one
    table row per repair and a summary line."""
    user = await insert_user(stack.pool, "FREE")
    course_id = await insert_course(stack.pool, user, status="generating_content")
    env = {**os.environ, **own_env(stack)}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "reconciler", "once"],
        cwd=ROOT, env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    lines = out.splitlines()
    assert lines[0].split() == ["kind", "course_id", "workflow_id", "run_id", "detail"]
    assert any(line.startswith("course_failed") and course_id in line for line in lines), out
    assert "epoch written" in lines[-1], out


def interval(stack: Stack, seconds: int) -> Settings:
    return make_settings(own_env(stack), RECONCILE_INTERVAL_SECONDS=str(seconds))


def own_env(stack: Stack) -> dict[str, str]:
    """The environment a process of this stack would read."""
    s = stack.settings
    return {
        "DATABASE_URL": s.stores.database_dsn,
        "REDIS_URL": s.stores.redis_dsn,
        "REDIS_KEY_PREFIX": s.stores.redis_key_prefix,
        "TEMPORAL_ADDRESS": s.temporal.address,
        "TEMPORAL_TASK_QUEUE": s.temporal.task_queue,
        "RECONCILE_GRACE_SECONDS": "0",
    }


def _run(run_id: str, started: float) -> Any:
    from admission import RunRef

    return RunRef(run_id, started)


async def test_a_page_lost_with_its_worker_is_retried_within_seconds(
    temporal_client: Client, task_queue: str
) -> None:
    """A courses page whose worker died mid-call (it neither answers nor heartbeats) is retried
    once its heartbeat timeout passes, not after the page's two-minute start-to-close: the pass
    goes on, and with it the Schedule, which starts no pass while one is open."""
    attempts: list[int] = []

    @activity.defn(name=act.RECONCILE_BEGIN)
    async def begin() -> ReconcileToken:
        return ReconcileToken("token")

    @activity.defn(name=act.RECONCILE_COURSES)
    async def courses_page(inp: ReconcileCursor) -> ReconcilePage:
        attempts.append(activity.info().attempt)
        if activity.info().attempt == 1:
            await asyncio.Event().wait()  # the worker is gone: no answer, no heartbeat
        return ReconcilePage(seen=3)

    @activity.defn(name=act.RECONCILE_LEASES)
    async def leases_page(inp: ReconcileCursor) -> ReconcilePage:
        return ReconcilePage()

    @activity.defn(name=act.RECONCILE_FINISH)
    async def finish(inp: ReconcileToken) -> bool:
        return True

    acts: list[Callable[..., Any]] = [begin, courses_page, leases_page, finish]
    async with Worker(
        temporal_client, task_queue=task_queue, workflows=[ReconcileWorkflow], activities=acts
    ):
        handle = await temporal_client.start_workflow(
            ReconcileWorkflow.run, id=f"reconcile-lost-{uuid.uuid4()}", task_queue=task_queue
        )
        summary = await asyncio.wait_for(handle.result(), timeout=PAGE_HEARTBEAT.seconds * 4)
    assert (summary.courses, summary.epoch_written) == (3, True)
    assert attempts == [1, 2]
