"""Observability without services: exporter choice, metric labels, critical-event log lines."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from temporalio.common import MetricCounter, MetricMeter
from temporalio.testing import ActivityEnvironment

import observability
from activities.metrics import MetricActivities, WorkerMetrics
from activities.types import RecordMetricInput
from admission import Holder, Leases
from api.limits import LimitCheck
from api.metrics import UNMATCHED, admission_reason, method_label, route_label
from db.errors import DatabaseUnavailable
from db.repository import CourseRepository
from telemetry import configure_logging
from tests.factories import make_settings
from tiers import Tier
from workflows.types import AdmissionResult, workflow_id_for


def test_no_exporter_installs_nothing() -> None:
    """Without OTEL_TRACES_EXPORTER no provider is installed: spans stay no-ops."""
    before = trace.get_tracer_provider()
    settings = make_settings().telemetry
    assert observability.configure_tracing(settings, "test", "0") is None
    assert trace.get_tracer_provider() is before


@pytest.mark.parametrize(
    ("names", "protocol", "expected"),
    [
        (["console"], "grpc", [ConsoleSpanExporter]),
        (["otlp"], "grpc", [GrpcExporter]),
        (["otlp"], "http/protobuf", [HttpExporter]),
        (["console", "otlp"], "grpc", [ConsoleSpanExporter, GrpcExporter]),
    ],
)
def test_exporters_follow_the_opentelemetry_variables(
    names: list[str], protocol: str, expected: list[type[Any]]
) -> None:
    """`console` and `otlp` (over OTEL_EXPORTER_OTLP_PROTOCOL) pick the SDK's own exporters."""
    exporters = observability.span_exporters(names, protocol)
    try:
        assert [type(e) for e in exporters] == expected
    finally:
        for exporter in exporters:
            exporter.shutdown()


def test_worker_metrics_port_zero_is_off() -> None:
    """Port 0 keeps the default runtime: no endpoint, nothing bound."""
    assert observability.metrics_runtime(0) is None


def test_http_labels_are_bounded() -> None:
    """Route labels are templates or `unmatched`; unknown methods are `other`."""

    class Route:
        path = "/api/v1/courses/{courseId}/generation"

    assert route_label({"route": Route()}) == Route.path
    assert route_label({"path": "/api/v1/courses/1/x"}) == UNMATCHED
    assert (method_label({"method": "POST"}), method_label({"method": "BREW"})) == ("POST", "other")


def test_admission_reasons() -> None:
    """A new or attached run, a refusal's limit, otherwise the decision itself."""

    def reason(decision: Any, limit: Any = None, new_run: bool = False) -> str:
        return admission_reason(AdmissionResult(decision, limit, "FREE", 1, new_run=new_run))

    assert reason("admitted", new_run=True) == "new_run"
    assert reason("admitted") == "existing_run"
    assert reason("rejected", "global_limit") == "global_limit"
    assert (reason("unavailable"), reason("closing")) == ("unavailable", "closing")


class Recorded:
    """Stands in for the repository and a counter: remembers what it was given; with `refuse`,
    the repository's write fails as an unreachable PostgreSQL's would."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.rows: list[dict[str, Any]] = []
        self.refuse = refuse

    async def record_metric(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(args)
        self.rows.append(kwargs)
        if self.refuse:
            raise DatabaseUnavailable("connection refused")

    def add(self, value: int, attributes: dict[str, str]) -> None:
        self.calls.append((value, attributes))


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("info", "json", environment="test", stream=buffer)
    yield buffer
    logging.getLogger().handlers.clear()


@pytest.mark.parametrize(
    ("severity", "level"),
    [("info", "info"), ("warn", "warning"), ("error", "error"), ("fatal", "critical")],
)
async def test_each_system_metric_is_one_line_at_its_severity(
    stream: io.StringIO, severity: str, level: str
) -> None:
    """`record_metric` writes the row and one log line at the row's severity; a rollback also
    counts by outcome; a retried attempt writes no second line."""
    repository, counter = Recorded(), Recorded()
    metrics = dataclasses.replace(
        WorkerMetrics.on(MetricMeter.noop),
        rollbacks=cast(MetricCounter, counter),
    )
    activities = MetricActivities(cast(CourseRepository, repository), metrics)
    inp = RecordMetricInput(
        "job_rollback", severity, "u-1", "c-1", "course-generation-c-1", {"outcome": "failed"}
    )
    env = ActivityEnvironment()
    await env.run(activities.record_metric, inp)
    env.info = dataclasses.replace(env.info, attempt=2)
    await env.run(activities.record_metric, inp)
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["level"], line["event"], line["event_type"]) == (
        level,
        "job_rollback",
        inp.event_type,
    )
    assert (line["course_id"], line["workflow_id"]) == ("c-1", "course-generation-c-1")
    assert (line["severity"], line["user_id"]) == (severity, "u-1")
    assert line["metadata"] == {"outcome": "failed"}
    assert counter.calls == [(1, {"outcome": "failed"})]
    assert [call[:2] for call in repository.calls] == [("job_rollback", severity)] * 2


class AtLimit:
    """A lease store whose user already holds one lease, of another course."""

    def __init__(self, holder: str) -> None:
        self.holder = holder

    async def usage(self, user_id: str) -> list[Holder]:
        return [Holder(self.holder, since=1_700_000_000.0, expires_at=1_700_003_600.0)]


@pytest.mark.parametrize("stored", [True, False])
async def test_the_gateways_limit_row_is_one_line_with_the_same_fields(
    stream: io.StringIO, stored: bool
) -> None:
    """The gateway's own `concurrency_limit_hit` row is logged as the worker's rows are: one
    `warning` line with the event type, severity, course, workflow (the row's `job_id`), user
    and the row's metadata; also when PostgreSQL refuses the row (then one more line says so)."""
    user, course, other = "u-1", "00000000-0000-4000-8000-000000000001", "c-other"
    held = workflow_id_for(other)
    repository = Recorded(refuse=not stored)
    check = LimitCheck(cast(Leases, AtLimit(held)), cast(CourseRepository, repository))
    policy = make_settings().admission.policy(Tier.FREE)
    refused = await check.refusal(check.read_usage(user), user, course, policy)
    assert refused is not None
    assert (refused.decision, refused.reason) == ("rejected", "user_limit")
    [row] = repository.rows
    assert repository.calls == [("concurrency_limit_hit", "warn")]
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    [line] = [ln for ln in lines if ln.get("event_type") == "concurrency_limit_hit"]
    assert (line["level"], line["event"], line["severity"]) == (
        "warning",
        "concurrency_limit_hit",
        "warn",
    )
    assert (line["course_id"], line["workflow_id"], line["user_id"]) == (
        row["course_id"],
        row["job_id"],
        row["user_id"],
    )
    assert (row["course_id"], row["job_id"], row["user_id"]) == (
        course,
        workflow_id_for(course),
        user,
    )
    assert line["metadata"] == row["metadata"]
    assert line["metadata"]["holders"] == [held]
    assert (line["metadata"]["reason"], line["metadata"]["source"]) == ("user_limit", "gateway")
    others = [ln["event"] for ln in lines if ln is not line]
    assert others == ([] if stored else ["metric concurrency_limit_hit not recorded"])
