"""One trace per generation, from the HTTP request through every activity; log lines that join
it. The app and the worker run in-process, built as the processes build them, with an in-memory
span recorder as the process's exporter."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import Observed
from tests.api.observed import SpanRecorder, Trace, captured_logs, log_lines, trace_id_of
from tests.api.support import QUICK, generation, wait_status
from tests.factories import bearer, hs_token, insert_course, insert_user
from tests.helpers import eventually

START_ROUTE = "POST /api/v1/courses/{courseId}/generation"
UPDATE_WITH_START = "StartUpdateWithStartWorkflow:CourseGenerationWorkflow"
RUN_WORKFLOW = "RunWorkflow:CourseGenerationWorkflow"
RUN_ACTIVITIES = (
    *("reserve_lease", "claim_course", "update_progress", "structure_analysis"),
    *("structure_generation", "text_generation", "finalization"),
)
# Steps 2→3, 3→4, 4→5 and step 5 completed (which also frees the lease); the claim wrote 1→2.
PROGRESS_WRITES = 4
# What a cancel at step 2 runs: the stage's cleanup (the API tests list it), then the course and
# lease compensations, then the one `job_rollback`.
COMPENSATIONS = (
    "structure_analysis_cleanup",
    "finish_generation",
    "release_lease",
    "record_metric",
)


async def recorded_until(recorder: SpanRecorder, activity: str, count: int = 1) -> None:
    async def ended() -> None:
        assert sum(s.name == f"RunActivity:{activity}" for s in recorder.spans) >= count

    await eventually(ended)


def start_trace(spans: list[ReadableSpan]) -> tuple[ReadableSpan, Trace]:
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER and s.name == START_ROUTE]
    return server, Trace.of(spans, server)


def assert_activities_under_the_start(trace: Trace, names: tuple[str, ...]) -> None:
    """Each `RunActivity:<name>` is a child of its `StartActivity:<name>`, which descends from
    the update-with-start span."""
    start = trace.one(UPDATE_WITH_START)
    for name in names:
        runs = trace.named(f"RunActivity:{name}")
        assert runs, f"no RunActivity:{name} in the trace"
        for run in runs:
            scheduled = trace.parent(run)
            assert scheduled is not None
            assert scheduled.name == f"StartActivity:{name}"
            assert start in trace.ancestors(scheduled)


def assert_one_trace_per_run(spans: list[ReadableSpan], trace: Trace, workflow_id: str) -> None:
    """Every Temporal span of the run (client, workflow, activity) is in the start's trace."""
    of_run = [s for s in spans if (s.attributes or {}).get("temporalWorkflowID") == workflow_id]
    assert of_run
    assert {trace_id_of(s) for s in of_run} == {trace_id_of(trace.spans[0])}


async def test_one_trace_from_the_request_through_every_activity(
    observed: Observed,
    span_recorder: SpanRecorder,
    pg_pool: asyncpg.Pool,
    temporal_env: WorkflowEnvironment,
) -> None:
    """A start through the API is one trace: the HTTP server span; the update-with-start under
    it; RunWorkflow under that; every activity of the run under its StartActivity; PostgreSQL
    spans inside the request and inside the activities, Redis spans inside the lease reserve.
    The run's Web UI details name the trace."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    with span_recorder.recording() as recorded:
        started = await observed.http.post(generation(course), headers=headers)
        assert started.status_code == 202, started.text
        await wait_status(observed.http, course, headers, "completed")
        await recorded_until(recorded, "update_progress", PROGRESS_WRITES)
    server, trace = start_trace(recorded.spans)
    assert (server.attributes or {}).get("http.route") == "/api/v1/courses/{courseId}/generation"
    start = trace.one(UPDATE_WITH_START)
    assert server in trace.ancestors(start)
    assert trace.parent(trace.one(RUN_WORKFLOW)) is start
    assert_activities_under_the_start(trace, RUN_ACTIVITIES)
    assert_one_trace_per_run(recorded.spans, trace, started.json()["workflowId"])
    postgres, redis = trace.database_spans("postgresql"), trace.database_spans("redis")
    assert any(server in trace.ancestors(s) for s in postgres)
    claim = trace.one("RunActivity:claim_course")
    assert any(claim in trace.ancestors(s) for s in postgres)
    reserve = trace.one("RunActivity:reserve_lease")
    assert any(reserve in trace.ancestors(s) for s in redis)
    last_write = max(trace.named("RunActivity:update_progress"), key=lambda s: s.start_time or 0)
    assert any(last_write in trace.ancestors(s) for s in redis)  # the lease freed with it
    handle = temporal_env.client.get_workflow_handle(started.json()["workflowId"])
    details = await (await handle.describe()).static_details()
    assert f"**Trace:** `{trace_id_of(server)}`" in (details or "")


@dataclass(frozen=True)
class CancelledRun:
    started: httpx.Response
    spans: list[ReadableSpan]
    logs: list[dict[str, Any]]


@pytest_asyncio.fixture(scope="module")
async def cancelled_run(
    observed: Observed, span_recorder: SpanRecorder, pg_pool: asyncpg.Pool
) -> AsyncIterator[CancelledRun]:
    """A run started and then cancelled at step 2 through the API, its spans and log lines."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 30})
    headers = bearer(hs_token(user))
    buffer: io.StringIO
    with span_recorder.recording() as recorded, captured_logs() as buffer:
        started = await observed.http.post(generation(course), headers=headers)
        assert started.status_code == 202, started.text
        await wait_status(observed.http, course, headers, "analyzing_task")
        cancel = await observed.http.post(f"{generation(course)}/cancel", headers=headers)
        assert cancel.status_code == 202, cancel.text
        await wait_status(observed.http, course, headers, "cancelled")
        await recorded_until(recorded, "record_metric")
    yield CancelledRun(started, recorded.spans, log_lines(buffer))


def test_compensations_are_in_the_start_trace(cancelled_run: CancelledRun) -> None:
    """The cleanup, finish, release and rollback metric activities of a cancelled run are in
    the trace of the request that started it, each under its StartActivity."""
    _, trace = start_trace(cancelled_run.spans)
    assert_activities_under_the_start(trace, COMPENSATIONS)
    workflow_id = cancelled_run.started.json()["workflowId"]
    assert_one_trace_per_run(cancelled_run.spans, trace, workflow_id)


def test_log_lines_in_a_request_and_an_activity_carry_its_ids(cancelled_run: CancelledRun) -> None:
    """The start's access line and the rollback line written by the `record_metric` activity
    both carry the start's request id, the course id, the workflow id and the start's trace id;
    the rollback line is at its severity (warn → warning) with its event type and metadata."""
    server, _ = start_trace(cancelled_run.spans)
    body = cancelled_run.started.json()
    expected = {
        "request_id": cancelled_run.started.headers["x-request-id"],
        "course_id": body["courseId"],
        "workflow_id": body["workflowId"],
        "trace_id": trace_id_of(server),
    }
    (access,) = [
        line
        for line in cancelled_run.logs
        if line["event"] == "request" and line["method"] == "POST" and line["status"] == 202
        and line["path"] == generation(body["courseId"])
    ]  # fmt: skip
    (rollback,) = [line for line in cancelled_run.logs if line["event"] == "job_rollback"]
    for line in (access, rollback):
        assert {key: line.get(key) for key in expected} == expected, line
        assert len(str(line["span_id"])) == 16
    assert (rollback["level"], rollback["event_type"]) == ("warning", "job_rollback")
    assert rollback["activity"] == "record_metric"
    assert rollback["metadata"]["outcome"] == "cancelled"


async def test_probes_and_scrapes_make_no_spans(
    observed: Observed, span_recorder: SpanRecorder
) -> None:
    """`/readyz` (which queries PostgreSQL, Redis and Temporal), `/healthz` and `/metrics` make
    no span at all, so probes do not fill the traces; other requests are traced."""
    with span_recorder.recording() as recorded:
        for path in ("/readyz", "/healthz", "/metrics"):
            assert (await observed.http.get(path)).status_code in (200, 503)
        assert _outside_runs(recorded.spans) == []
        await observed.http.get("/api/v1/me/concurrency")
    assert [s.name for s in _outside_runs(recorded.spans) if s.kind == SpanKind.SERVER] == [
        "GET /api/v1/me/concurrency"
    ]


def _outside_runs(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """`spans` less those of traces a Temporal run made (a previous test's run may still be
    closing on the shared worker while this test records)."""
    runs = {s.context.trace_id for s in spans if s.context and s.name.startswith(_TEMPORAL)}
    return [s for s in spans if s.context and s.context.trace_id not in runs]


_TEMPORAL = ("RunActivity", "RunWorkflow", "StartActivity", "HandleUpdate", "ValidateUpdate",
             "CompleteWorkflow", "StartWorkflow", "UpdateWithStart", "HandleQuery")  # fmt: skip
