"""Prometheus metrics: the gateway's `/metrics` and the worker's endpoint move with a start, a
429 and a cancel, by bounded labels, and both expositions parse with prometheus_client."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from tests.api.conftest import Observed
from tests.api.observed import Samples, scrape, value
from tests.api.support import generation, wait_status
from tests.factories import bearer, hs_token, insert_course, insert_user
from tests.helpers import eventually

START = "/api/v1/courses/{courseId}/generation"
CANCEL = "/api/v1/courses/{courseId}/generation/cancel"


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def start_refuse_cancel(observed: Observed, pg_pool: asyncpg.Pool) -> list[str]:
    """A FREE user's start (202), a second course refused (429), the first cancelled (202)."""
    user = await insert_user(pg_pool)
    first = await insert_course(pg_pool, user, simulation={"stage_seconds": 30})
    second = await insert_course(pg_pool, user, simulation={"stage_seconds": 30})
    headers = bearer(hs_token(user))
    answers = [
        await observed.http.post(generation(first), headers=headers),
        await observed.http.post(generation(second), headers=headers),
        await observed.http.post(f"{generation(first)}/cancel", headers=headers),
    ]
    assert [a.status_code for a in answers] == [202, 429, 202], [a.text for a in answers]
    await wait_status(observed.http, first, headers, "cancelled")

    async def rolled_back() -> None:  # the run's last step, after the course is cancelled
        query = "SELECT count(*) FROM system_metrics WHERE course_id = $1 AND event_type = $2"
        assert await pg_pool.fetchval(query, uuid.UUID(first), "job_rollback") == 1

    await eventually(rolled_back)
    return [user, first, second]


async def test_gateway_metrics_move_by_route_template_and_tier(
    observed: Observed, pg_pool: asyncpg.Pool
) -> None:
    """Requests count by route template, method and status (an unknown path as `unmatched`),
    are timed by route, and each admission answer counts by tier, decision and reason; no
    label holds a user or course id."""
    before = await scrape(observed.http, "/metrics")
    ids = await start_refuse_cancel(observed, pg_pool)
    assert (await observed.http.get("/no/such/path")).status_code == 404
    after = await scrape(observed.http, "/metrics")
    requests = "http_requests_total"
    assert delta(before, after, requests, route=START, method="POST", status="202") == 1
    assert delta(before, after, requests, route=START, method="POST", status="429") == 1
    assert delta(before, after, requests, route=CANCEL, method="POST", status="202") == 1
    assert delta(before, after, requests, route="unmatched", method="GET", status="404") == 1
    timed = "http_request_duration_seconds_count"
    assert delta(before, after, timed, route=START, method="POST") == 2
    admissions = "coursegen_admissions_total"
    admitted = {"tier": "FREE", "decision": "admitted", "reason": "new_run"}
    assert delta(before, after, admissions, **admitted) == 1
    rejected = {"tier": "FREE", "decision": "rejected", "reason": "user_limit"}
    assert delta(before, after, admissions, **rejected) == 1
    assert ("coursegen_sse_subscribers", frozenset()) in after
    labels = {v for (_, pairs) in after for _, v in pairs}
    assert not any(i in label for i in ids for label in labels)


async def test_worker_endpoint_serves_rollbacks_and_the_sdk_metrics(
    observed: Observed, pg_pool: asyncpg.Pool
) -> None:
    """The worker's port serves `coursegen_rollbacks_total{outcome}` (one more per cancelled
    run) next to the Temporal SDK's worker metrics: schedule-to-start latency of the stage
    queue, task slots, sticky cache."""
    async with httpx.AsyncClient() as http:
        before = await scrape(http, observed.worker_metrics)
        await start_refuse_cancel(observed, pg_pool)

        async def counted() -> Samples:
            after = await scrape(http, observed.worker_metrics)
            rollbacks = delta(before, after, "coursegen_rollbacks_total", outcome="cancelled")
            assert rollbacks == 1
            return after

        after = await eventually(counted)
    stage_queue = observed.settings.temporal.stage_queue("structure_analysis")
    latency = "temporal_activity_schedule_to_start_latency_seconds_count"
    assert value(after, latency, task_queue=stage_queue) >= 1
    # the docs' p95 alert reads these buckets per stage queue (`<stage prefix>.<stage>`)
    buckets = "temporal_activity_schedule_to_start_latency_seconds_bucket"
    assert value(after, buckets, task_queue=stage_queue, le="+Inf") >= 1
    assert value(after, "temporal_worker_task_slots_available", worker_type="ActivityWorker") > 0
    assert any(name == "temporal_sticky_cache_size" for name, _ in after)
