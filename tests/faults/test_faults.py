"""One fault at a time against the whole stack, each followed by the invariant check.

Each test starts ~30 runs across the tiers through the gateway (some users at their limit),
breaks one thing, restores it, and then every invariant must hold again within one reconcile
interval + the grace + 10 s of the fault ending.
"""

from __future__ import annotations

import asyncio
import time

from admission import LeaseEpochMissing
from tests.factories import insert_course
from tests.faults import probes
from tests.faults.harness import REPORT, Scenario
from tests.faults.workload import Planned
from tests.helpers import eventually

LONG = {"hold_at_step": 3, "hold_seconds": 300}  # keeps a run inside step 3
# Runs of about 8 s of stages: long enough that the fault finds them inside one, however slowly
# the burst of starts was answered (with the suite's 1 s stages a run could be done before).
IN_FLIGHT = {"stage_seconds": 2}


async def assert_all_completed(scenario: Scenario) -> None:
    """Every admitted run completed; else the courses that did not, with their messages."""
    assert scenario.stack.pool is not None
    rows = await scenario.stack.pool.fetch(
        "SELECT id, generation_status::text, error_message FROM public.courses"
        " WHERE id::text = ANY($1) AND generation_status <> 'completed'",
        [p.course_id for p in scenario.admitted],
    )
    assert not rows, [dict(r) for r in rows]


async def runs_in_flight(scenario: Scenario) -> None:
    """The default workload started and at least 10 runs inside a stage; the fault starts."""
    assert scenario.stack.pool is not None
    await scenario.start(await scenario.plan(simulation=IN_FLIGHT))
    await probes.wait_in_stage(scenario.stack.pool, scenario.admitted, at_least=10)
    scenario.fault()


async def all_complete(scenario: Scenario) -> None:
    """The fault has ended: every invariant holds in time and every run completed."""
    if scenario.fault_ended is None:
        scenario.healed()
    await scenario.converge()
    await assert_all_completed(scenario)


async def test_worker_sigkill_mid_stage(scenario: Scenario) -> None:
    """SIGKILL the worker while runs are inside stages, start it again 5 s later: every run
    completes (the stage activities time out on their heartbeat and run again)."""
    await runs_in_flight(scenario)
    scenario.stack.worker.kill()
    await asyncio.sleep(5)
    await scenario.stack.start_worker()
    scenario.healed()  # the fault ends once a worker polls again (its boot takes 2-6 s here)
    await all_complete(scenario)


async def test_temporal_sigkill_restarted_on_same_file(scenario: Scenario) -> None:
    """SIGKILL the dev server mid-run and start it again on its database file: the runs go
    on where they were and complete."""
    await runs_in_flight(scenario)
    scenario.stack.temporal.kill()
    scenario.stack.temporal.start()
    await all_complete(scenario)


async def test_postgres_stopped_for_10_seconds(scenario: Scenario) -> None:
    """`pg_ctl stop -m fast` mid-run, started again 10 s later: progress writes retry through
    the outage and every run completes."""
    await runs_in_flight(scenario)
    await asyncio.to_thread(scenario.stack.postgres.stop, "fast")
    await asyncio.sleep(10)
    await asyncio.to_thread(scenario.stack.postgres.start)
    await all_complete(scenario)


async def test_workflow_terminate_of_three_runs(scenario: Scenario) -> None:
    """`temporal workflow terminate` skips every compensation; the reconciler fails the three
    courses with a message and frees their leases."""
    stack = scenario.stack
    assert stack.pool is not None
    held = await scenario.plan([("PREMIUM", 1, 3)], simulation=LONG)
    planned = await scenario.plan()
    await scenario.start([*held, *planned])
    await probes.wait_in_stage(stack.pool, held, at_least=3)
    scenario.fault()
    for p in held:
        await asyncio.to_thread(probes.terminate, stack.temporal.address, workflow_id(p))
    scenario.healed()
    await scenario.converge()
    final = await probes.statuses(stack.pool, held)
    assert set(final.values()) == {"failed"}, final


def workflow_id(planned: Planned) -> str:
    return f"course-generation-{planned.course_id}"


async def test_worker_down_across_deadline_and_timeout(scenario: Scenario) -> None:
    """Runs with a 60 s execution timeout lose their worker before their deadline
    (timeout - margin) and get it back only after Temporal timed them out: nothing was
    compensated, so the reconciler fails the rows and frees the leases."""
    stack = scenario.stack
    assert stack.pool is not None
    assert stack.client is not None
    short = stack.service("api", "api-short-timeout", WORKFLOW_EXECUTION_TIMEOUT_SECONDS="60")
    url = await stack.start_api(short)
    held = await scenario.plan([("STANDARD", 1, 3)], simulation=LONG)
    await scenario.start(held, base_url=url)
    await probes.wait_in_stage(stack.pool, held, at_least=3)
    scenario.fault()
    stack.worker.kill()
    stack.retire(short)

    client = stack.client

    async def timed_out() -> None:
        for p in held:
            described = await client.get_workflow_handle(workflow_id(p)).describe()
            assert described.status is not None
            assert described.status.name == "TIMED_OUT"

    await eventually(timed_out, timeout=90, interval=1)
    scenario.healed()
    await stack.start_worker()
    await scenario.converge()
    final = await probes.statuses(stack.pool, held)
    assert set(final.values()) == {"failed"}, final
    rollbacks = await stack.pool.fetchval(
        "SELECT count(*) FROM public.system_metrics WHERE event_type = 'job_rollback'"
        " AND course_id::text = ANY($1)",
        [p.course_id for p in held],
    )
    assert rollbacks == 0, "a timed-out run compensated nothing, so no job_rollback"


async def test_temporal_unreachable_for_20_seconds(scenario: Scenario) -> None:
    """With the gateway's path to Temporal cut for 20 s, starts and status reads answer 503
    with Retry-After at once: never a hang, never a 500."""
    from tests.faults.proxy import FaultProxy

    stack = scenario.stack
    with FaultProxy(stack.temporal.port) as proxy:
        gateway = stack.service("api", "api-via-proxy", TEMPORAL_ADDRESS=proxy.address)
        url = await stack.start_api(gateway)
        running = await scenario.plan([("PREMIUM", 1, 4)], simulation={"stage_seconds": 3})
        await scenario.start(running, base_url=url)
        waiting = await scenario.plan([("PREMIUM", 2, 2)])
        scenario.fault()
        proxy.cut()
        async with scenario.http(url) as http:
            answers = await probes.calls_during(http, 20, waiting, running)
        proxy.heal()
        scenario.healed()
        stack.retire(gateway)
    slowest = max(a.seconds for a in answers)
    bad = [a for a in answers if a.status != 503 or a.retry_after is None or a.seconds > 5]
    assert not bad, bad
    median = sorted(a.seconds for a in answers)[len(answers) // 2]
    REPORT.append(
        f"{'temporal_unreachable answers':<34} {len(answers)} answers, all 503 + Retry-After;"
        f" latency max {slowest:.2f} s, median {median:.2f} s"
    )
    await scenario.converge()


async def test_redis_restarted_empty(scenario: Scenario) -> None:
    """Redis restarted empty while three FREE users each have a run in flight: the first call
    after the restart reaches Redis; their second courses are never admitted (503 until the
    rebuild, 429 after it); their leases come back."""
    stack = scenario.stack
    assert stack.pool is not None
    firsts = await scenario.plan([("FREE", 3, 1)], simulation=LONG)
    seconds = await more_courses(scenario, firsts)
    others = await scenario.plan(REST)
    await scenario.start([*firsts, *others])
    await probes.wait_in_stage(stack.pool, firsts, at_least=3)
    await stack.leases.usage(firsts[0].user_id)  # a pooled connection the restart leaves dead
    scenario.fault()
    await asyncio.to_thread(stack.redis.restart_empty)
    scenario.healed()
    restarted = time.monotonic()
    # The first call after the restart reaches Redis (the client retries a dead pooled
    # connection once) and finds the epoch gone.
    assert await stack.leases.epoch() is None
    codes, back = await second_starts_until_rebuilt(scenario, firsts, seconds)
    for user, answered in codes.items():
        assert not {200, 202} & set(answered), f"{user} got a second run admitted: {answered}"
        first_429 = answered.index(429)
        assert set(answered[:first_429]) <= {503}, answered
        assert set(answered[first_429:]) == {429}, answered
    await cancel_all(scenario, firsts)
    REPORT.append(
        f"{'redis_restarted_empty leases':<34} back {back - restarted:.1f} s after the restart;"
        f" second starts {[len(c) for c in codes.values()]} answered 503 then 429"
    )
    await scenario.converge()


async def cancel_all(scenario: Scenario, planned: list[Planned]) -> None:
    """Cancel held runs through the gateway, as their owners would."""
    async with scenario.http() as http:
        for p in planned:
            response = await http.post(f"{p.path}/cancel", headers=p.headers, json={})
            assert response.status_code == 202, response.text


REST = (("BASIC", 3, 2), ("STANDARD", 2, 3), ("PREMIUM", 1, 5))


async def more_courses(scenario: Scenario, owners: list[Planned]) -> list[Planned]:
    """One more course for each of `owners`' users."""
    assert scenario.stack.pool is not None
    return [
        Planned(
            p.user_id, p.tier, await insert_course(scenario.stack.pool, p.user_id, simulation={})
        )
        for p in owners
    ]


async def second_starts_until_rebuilt(
    scenario: Scenario, firsts: list[Planned], seconds: list[Planned]
) -> tuple[dict[str, list[int]], float]:
    """Start each user's second course every 0.3 s until the rebuild gave back the leases of
    their first ones and each has been answered 429; the answers per user and when the
    leases were back."""
    stack = scenario.stack
    assert stack.pool is not None
    pool = stack.pool
    codes: dict[str, list[int]] = {p.user_id: [] for p in seconds}
    deadline = time.monotonic() + stack.converge_seconds
    watcher = asyncio.create_task(when_leases_back(scenario, firsts, deadline))
    async with scenario.http() as http:
        while time.monotonic() < deadline:
            answers = await asyncio.gather(
                *(http.post(p.path, headers=p.headers, json={}) for p in seconds)
            )
            for p, response in zip(seconds, answers, strict=True):
                codes[p.user_id].append(response.status_code)
                if response.status_code in (200, 202):
                    raise AssertionError(
                        f"{p.user_id}: second run admitted {codes[p.user_id]}; first courses"
                        f" {await probes.statuses(pool, firsts)}; leases"
                        f" {await stack.leases.holders()}"
                    )
            if watcher.done() and all(c[-1] == 429 for c in codes.values()):
                return codes, watcher.result()
            await asyncio.sleep(0.3)
    firsts_now = await probes.statuses(pool, firsts)
    raise AssertionError(
        f"no rebuild within {stack.converge_seconds} s: {codes}; first courses {firsts_now}"
    )


async def when_leases_back(scenario: Scenario, firsts: list[Planned], deadline: float) -> float:
    """The moment (monotonic) the first courses' leases are all back, polled every 0.1 s."""
    while not await leases_back(scenario, firsts):
        assert time.monotonic() < deadline, "leases not back"
        await asyncio.sleep(0.1)
    return time.monotonic()


async def leases_back(scenario: Scenario, firsts: list[Planned]) -> bool:
    try:
        for p in firsts:
            holders = await scenario.stack.leases.usage(p.user_id)
            if [h.holder for h in holders] != [workflow_id(p)]:
                return False
    except LeaseEpochMissing:
        return False
    return True
