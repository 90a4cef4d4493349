"""What the processes export: traces and the worker's Prometheus endpoint.

Traces: one OpenTelemetry tracer provider per process, its exporter chosen by OpenTelemetry's
own variables, and the libraries that make the spans.

- FastAPI traces each request itself (server span named after the route template) as soon as
  a provider is installed;
- Temporal's `TracingInterceptor` is installed on every client `temporal_connect.connect`
  makes, so workers built from that client inherit it: the request's span is carried through
  update-with-start into `RunWorkflow`, every activity and every compensation;
- asyncpg and Redis calls get client spans from their OpenTelemetry instrumentations.

`OTEL_TRACES_EXPORTER` unset or `none` installs nothing: every span is a no-op and log lines
carry no trace ids. Tests and benchmarks that want spans `install()` a provider of their own.

Worker metrics: a Temporal runtime whose Prometheus endpoint serves the SDK's worker metrics
and, through the runtime's metric meter, the worker's own counters (`activities.metrics`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from settings import TelemetrySettings

# Exporters register themselves under this entry-point group; OTLP by its protocol.
EXPORTER_GROUP = "opentelemetry_traces_exporter"
OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}
FLUSH_MILLIS = 2000


def configure_tracing(
    settings: TelemetrySettings, environment: str, version: str
) -> TracerProvider | None:
    """Install a provider exporting to `OTEL_TRACES_EXPORTER`; None (nothing) when unset."""
    if not settings.traces_exporter:
        return None
    _hand_to_sdk(settings)
    provider = new_provider(settings.service_name, environment, version)
    for exporter in span_exporters(settings.traces_exporter, settings.otlp_protocol):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return provider


def new_provider(
    service_name: str, environment: str, version: str, id_generator: IdGenerator | None = None
) -> TracerProvider:
    """A provider whose resource names the service (`OTEL_RESOURCE_ATTRIBUTES` adds to it)."""
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": version,
            "deployment.environment": environment,
        }
    )
    return TracerProvider(resource=resource, id_generator=id_generator)


def span_exporters(names: Sequence[str], otlp_protocol: str) -> list[SpanExporter]:
    """The exporters `names` choose; each OTLP exporter reads its endpoint and headers from
    OpenTelemetry's variables itself. `console` writes one JSON object per span and line."""
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "console":
            exporters.append(ConsoleSpanExporter(formatter=_one_line))
        else:
            exporters.append(_exporter_class(OTLP_BY_PROTOCOL[otlp_protocol])())
    return exporters


def install(provider: TracerProvider) -> None:
    """Make `provider` the process's provider and instrument asyncpg and Redis (once)."""
    trace.set_tracer_provider(provider)
    asyncpg = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]  # its __init__ has no annotations
    for instrumentor in (asyncpg, RedisInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def temporal_interceptors() -> list[TracingInterceptor]:
    """What every Temporal client gets; a worker built from the client inherits it."""
    return [TracingInterceptor()]


def current_trace_id() -> str | None:
    """The trace id of the current span (32 hex digits), or None outside a recorded trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def flush() -> None:
    """Export what is still queued (the processes end with `os._exit`, skipping atexit)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(FLUSH_MILLIS)


def metrics_runtime(port: int, host: str = "0.0.0.0") -> Runtime | None:
    """A Temporal runtime serving Prometheus on `host:port`: the SDK's worker metrics and, through
    its metric meter, ours. None for port 0 (the default runtime, no endpoint)."""
    if not port:
        return None
    prometheus = PrometheusConfig(
        bind_address=f"{host}:{port}",
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


def metrics_runtime_or_exit(port: int) -> Runtime | None:
    """`metrics_runtime`; a port it cannot bind prints one line naming it and exits 1."""
    try:
        return metrics_runtime(port)
    except ValueError as exc:  # the SDK's "Failed starting Prometheus exporter: …"
        print(f"WORKER_METRICS_PORT {port}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _exporter_class(entry_point: str) -> type[SpanExporter]:
    (found,) = entry_points(group=EXPORTER_GROUP, name=entry_point)
    loaded: type[SpanExporter] = found.load()
    return loaded


def _hand_to_sdk(settings: TelemetrySettings) -> None:
    """Values read from a `.env` file reach the exporters, which read only the environment."""
    given = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": settings.otlp_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": settings.otlp_protocol,
    }
    for name, value in given.items():
        if value:
            os.environ.setdefault(name, value)


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"
