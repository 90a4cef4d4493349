"""Logs (level, format, environment), traces (OpenTelemetry's own variable names) and the
worker's Prometheus endpoint."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from settings.base import Group, split_csv

# The span exporters OTEL_TRACES_EXPORTER may name (OTLP over OTEL_EXPORTER_OTLP_PROTOCOL).
TraceExporter = Literal["console", "otlp"]


class TelemetrySettings(Group):
    """Traces (OpenTelemetry's own variable names) and the worker's Prometheus endpoint."""

    traces_exporter: Annotated[list[TraceExporter], NoDecode] = Field(
        default_factory=list, validation_alias="OTEL_TRACES_EXPORTER"
    )
    otlp_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otlp_protocol: Literal["grpc", "http/protobuf"] = Field(
        default="grpc", validation_alias="OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    service_name: str = Field(
        default="course-generator", min_length=1, validation_alias="OTEL_SERVICE_NAME"
    )
    worker_metrics_port: int = Field(
        default=9464, ge=0, le=65535, validation_alias="WORKER_METRICS_PORT"
    )

    @field_validator("traces_exporter", mode="before")
    @classmethod
    def _exporters(cls, value: object) -> object:
        """A comma list as the SDK reads it; `none` (or nothing) means no exporter."""
        names = split_csv(value.lower() if isinstance(value, str) else value)
        return [name for name in names if name != "none"] if isinstance(names, list) else names


class LogSettings(Group):
    level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", validation_alias="LOG_LEVEL"
    )
    format: Literal["json", "console"] = Field(default="json", validation_alias="LOG_FORMAT")
    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias="ENVIRONMENT"
    )

    @field_validator("level", "format", "environment", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value
