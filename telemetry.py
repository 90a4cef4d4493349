"""Logging (structlog, one JSON object per line) for every process.

Standard-library records — uvicorn's, Temporal's `workflow.logger` and `activity.logger` — go
through the same processors, so every line has the same shape. A line written inside a span
carries its `trace_id` and `span_id`; inside an activity, its run's ids; and wherever the
gateway's request reached (through the trace's baggage), the `request_id`.

Every `system_metrics` row is also one line, at its severity, through `log_system_metric`: the
worker's `record_metric` activity, the reconciler and the gateway's limit check all log theirs
through it, so every row's line has the same fields.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, MutableMapping
from typing import Any, NoReturn, TextIO

import structlog
from opentelemetry import baggage, trace
from temporalio import activity

import observability
from workflows.types import WORKFLOW_ID_PREFIX, course_id_of

SERVICE = "course-generator"
CONTEXT_KEYS = ("request_id", "user_id", "tier", "course_id", "workflow_id", "run_id")
# The baggage entry the gateway sets per request; Temporal's interceptor carries it to the run.
REQUEST_ID_BAGGAGE = "request_id"
# `system_metrics` severities and the log levels their lines are written at.
SEVERITY_LEVELS = {
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
metric_log = structlog.get_logger("system_metrics")
# What every `logging.LogRecord` carries, so not an `extra`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
_NOT_EXTRAS = frozenset({"color_message", "temporal_workflow", "temporal_activity"})


def _add_static(service: str, environment: str, version: str) -> structlog.types.Processor:
    def processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("service", service)
        event.setdefault("environment", environment)
        event.setdefault("version", version)
        return event

    return processor


def _temporal_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Lift workflow/activity ids that Temporal's loggers attach as `extra` into the line."""
    record = event.get("_record")
    for attr in ("temporal_workflow", "temporal_activity"):
        info = getattr(record, attr, None)
        if isinstance(info, dict):
            event.setdefault("workflow_id", info.get("workflow_id"))
            event.setdefault("run_id", info.get("run_id") or info.get("workflow_run_id"))
            if "activity_type" in info:
                event.setdefault("activity", info["activity_type"])
            if "workflow_type" in info:
                event.setdefault("workflow_type", info["workflow_type"])
    return event


def _record_extras(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A standard-library record's `extra` fields, each where the line has no field of that
    name yet (an extra cannot replace `service`, `level` or the ids). Left out: private keys
    (Temporal's `__temporal_error_identifier`), Temporal's `temporal_*` dicts (their ids are
    lifted by `_temporal_context`) and uvicorn's `color_message` (the message again, coloured)."""
    record = event.get("_record")
    if record is None:
        return event
    for key, value in vars(record).items():
        if key in _RECORD_FIELDS or key in _NOT_EXTRAS or key.startswith("_"):
            continue
        event.setdefault(key, value)
    return event


def _trace_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The current span's ids, and the request id the trace carries as baggage."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    request_id = baggage.get_baggage(REQUEST_ID_BAGGAGE)
    if request_id is not None:
        event.setdefault("request_id", str(request_id))
    return event


def _activity_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Inside an activity: its run's ids and, for a course run, the course id."""
    if not activity.in_activity():
        return event
    info = activity.info()
    event.setdefault("workflow_id", info.workflow_id)
    event.setdefault("run_id", info.workflow_run_id)
    event.setdefault("activity", info.activity_type)
    if info.workflow_id and info.workflow_id.startswith(WORKFLOW_ID_PREFIX):
        event.setdefault("course_id", course_id_of(info.workflow_id))
    return event


def _shared_processors(environment: str, version: str) -> list[structlog.types.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_static(SERVICE, environment, version),
        _trace_context,
        _activity_context,
    ]


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    environment: str = "development",
    version: str = "0.0.0",
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library through one JSON (or console) renderer."""
    shared = _shared_processors(environment, version)
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _record_extras, _temporal_context],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def bind_context(**values: Any) -> None:
    """Bind request/run context (only the known keys, skipping None) for later log lines."""
    known = {k: v for k, v in values.items() if k in CONTEXT_KEYS and v is not None}
    structlog.contextvars.bind_contextvars(**known)


def log_system_metric(
    event_type: str,
    severity: str,
    *,
    course_id: str | None,
    workflow_id: str | None,
    user_id: str | None,
    metadata: dict[str, Any],
) -> None:
    """The log line of one `system_metrics` row, at its severity (`workflow_id` is the row's
    `job_id`): every writer of a row logs it through here, whether or not the row is stored."""
    metric_log.log(
        SEVERITY_LEVELS.get(severity, logging.INFO),
        event_type,
        event_type=event_type,
        severity=severity,
        course_id=course_id,
        workflow_id=workflow_id,
        user_id=user_id,
        metadata=metadata,
    )


def run_then_exit(main: Callable[[], int | None]) -> NoReturn:
    """Run a process's `main`, flush the logs, then leave without interpreter teardown.

    The Temporal client's Rust threads can abort a finalizing interpreter ("PyGILState_Release:
    thread state must be current", sdk-python #300), turning a clean exit into SIGABRT; so
    every process that made a Temporal client ends with `os._exit` once its work is done.
    """
    try:
        code = main() or 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    observability.flush()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
