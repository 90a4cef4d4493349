"""Helpers for the observability tests: a span recorder, log capture, trace and scrape reading."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from prometheus_client.parser import text_string_to_metric_families

from telemetry import configure_logging


class SpanRecorder(SpanProcessor):
    """Keeps the spans that end while it is armed (the provider stays for the whole session)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.armed = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.armed:
            self.spans.append(span)

    @contextmanager
    def recording(self) -> Iterator[SpanRecorder]:
        self.spans, self.armed = [], True
        try:
            yield self
        finally:
            self.armed = False


class OwnRandomIds(IdGenerator):
    """Span and trace ids from a generator of their own: the SDK's default draws from the global
    `random`, which Hypothesis (the schemathesis tests) refuses to see move under its draws."""

    def __init__(self) -> None:
        self._random = random.Random()

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


@dataclass(frozen=True)
class Trace:
    """The spans of one trace, with their parents."""

    spans: list[ReadableSpan]

    @classmethod
    def of(cls, recorded: list[ReadableSpan], member: ReadableSpan) -> Trace:
        trace_id = _context(member).trace_id
        return cls([s for s in recorded if _context(s).trace_id == trace_id])

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        (found,) = self.named(name)
        return found

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        wanted = span.parent.span_id if span.parent else None
        return next((s for s in self.spans if _context(s).span_id == wanted), None)

    def ancestors(self, span: ReadableSpan) -> list[ReadableSpan]:
        chain, current = [], self.parent(span)
        while current is not None:
            chain.append(current)
            current = self.parent(current)
        return chain

    def database_spans(self, system: str) -> list[ReadableSpan]:
        return [s for s in self.spans if _db_system(s) == system]


def _context(span: ReadableSpan) -> Any:
    context = span.get_span_context()
    assert context is not None
    return context


def _db_system(span: ReadableSpan) -> object:
    attributes = span.attributes or {}
    return attributes.get("db.system.name", attributes.get("db.system"))


def trace_id_of(span: ReadableSpan) -> str:
    return format(_context(span).trace_id, "032x")


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every process log line, as the processes write them (JSON), into a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("info", "json", environment="test", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def log_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient, url: str) -> Samples:
    """One scrape, parsed by prometheus_client: {(sample name, labels): value}."""
    response = await http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)
