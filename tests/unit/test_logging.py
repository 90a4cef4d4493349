"""Log lines: one JSON object per line with the fixed keys, bound context and Temporal ids."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider
from temporalio.testing import ActivityEnvironment

from telemetry import REQUEST_ID_BAGGAGE, bind_context, configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("info", "json", environment="test", version="9.9.9", stream=buffer)
    structlog.contextvars.clear_contextvars()
    yield buffer
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers.clear()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_structlog_line_has_the_fixed_keys(stream: io.StringIO) -> None:
    """A structlog event renders as one JSON object with timestamp, level, event, service…"""
    structlog.get_logger("x").info("run_started", steps=5)
    (line,) = _lines(stream)
    assert line["event"] == "run_started"
    assert line["level"] == "info"
    assert line["service"] == "course-generator"
    assert (line["environment"], line["version"], line["steps"]) == ("test", "9.9.9", 5)
    assert str(line["timestamp"]).endswith("Z")
    assert "T" in str(line["timestamp"])


def test_bound_context_appears_on_every_line(stream: io.StringIO) -> None:
    """Bound request/run context is added to later lines; unknown keys and None are dropped."""
    bind_context(request_id="r-1", user_id="u-1", tier="FREE", course_id="c-1", secret="no")
    bind_context(workflow_id=None)
    structlog.get_logger().info("one")
    logging.getLogger("stdlib").warning("two")
    first, second = _lines(stream)
    for line in (first, second):
        assert (line["request_id"], line["user_id"], line["tier"]) == ("r-1", "u-1", "FREE")
        assert line["course_id"] == "c-1"
        assert "secret" not in line
        assert "workflow_id" not in line
    assert (second["event"], second["level"]) == ("two", "warning")


def test_temporal_logger_extras_become_fields(stream: io.StringIO) -> None:
    """Records from Temporal's workflow/activity loggers carry workflow_id and run_id."""
    extra = {"temporal_workflow": {"workflow_id": "course-generation-1", "run_id": "r9"}}
    logging.getLogger("temporalio.workflow").info("step done", extra=extra)
    (line,) = _lines(stream)
    assert (line["workflow_id"], line["run_id"]) == ("course-generation-1", "r9")
    assert line["event"] == "step done"
    assert "temporal_workflow" not in line  # its ids are lifted, the rest stays out


def test_a_standard_library_records_extra_fields_become_fields(stream: io.StringIO) -> None:
    """`log.warning(..., extra={...})` of our own modules keeps its fields in the line."""
    extra = {"error": "lease store did not answer", "objects": 3}
    logging.getLogger("activities.course").warning("lease release left to the run", extra=extra)
    (line,) = _lines(stream)
    assert (line["error"], line["objects"]) == ("lease store did not answer", 3)
    assert (line["event"], line["level"]) == ("lease release left to the run", "warning")


def test_an_extra_field_never_replaces_the_lines_own(stream: io.StringIO) -> None:
    """An extra named like a fixed key (temporalio's Nexus logger sets `service`) leaves the
    line's own; private keys (temporalio's `__temporal_error_identifier`) stay out."""
    extra = {"service": "nexus-op", "level": "nope", "__temporal_error_identifier": "x"}
    logging.getLogger("temporalio.nexus").error("operation failed", extra=extra)
    (line,) = _lines(stream)
    assert (line["service"], line["level"]) == ("course-generator", "error")
    assert "__temporal_error_identifier" not in line


def test_uvicorns_coloured_copy_of_a_message_stays_out(stream: io.StringIO) -> None:
    extra = {"color_message": "Uvicorn running on \x1b[1mhttp://127.0.0.1:8000\x1b[0m"}
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s", "http://127.0.0.1:8000", extra=extra
    )
    (line,) = _lines(stream)
    assert line["event"] == "Uvicorn running on http://127.0.0.1:8000"
    assert "color_message" not in line


def test_console_format_is_not_json() -> None:
    """The development console format renders readable text rather than JSON."""
    buffer = io.StringIO()
    configure_logging("info", "console", stream=buffer)
    structlog.get_logger().info("hello", course_id="c")
    logging.getLogger().handlers.clear()
    text = buffer.getvalue()
    assert "hello" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_lines_inside_a_span_carry_its_ids(stream: io.StringIO) -> None:
    """Inside a span a line has its trace and span ids, and the request id the trace carries as
    baggage; outside any span it has none."""
    tracer = TracerProvider().get_tracer("test")
    token = context.attach(baggage.set_baggage(REQUEST_ID_BAGGAGE, "r-7"))
    try:
        with tracer.start_as_current_span("work") as span:
            structlog.get_logger().info("inside")
            logging.getLogger("stdlib").info("inside too")
    finally:
        context.detach(token)
    structlog.get_logger().info("outside")
    first, second, outside = _lines(stream)
    ids = span.get_span_context()
    for line in (first, second):
        assert line["trace_id"] == format(ids.trace_id, "032x")
        assert line["span_id"] == format(ids.span_id, "016x")
        assert line["request_id"] == "r-7"
    assert not {"trace_id", "span_id", "request_id"} & set(outside)


async def test_lines_inside_an_activity_carry_its_run(stream: io.StringIO) -> None:
    """A line written inside an activity of a course run names the run and the course."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, workflow_id="course-generation-c-9", workflow_run_id="run-3", activity_type="a"
    )

    async def work() -> None:
        structlog.get_logger().info("in activity")

    await env.run(work)
    (line,) = _lines(stream)
    expected = ("course-generation-c-9", "run-3", "a", "c-9")
    assert (line["workflow_id"], line["run_id"], line["activity"], line["course_id"]) == expected
