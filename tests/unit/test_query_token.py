"""The stream's `access_token` leaves the query string before FastAPI's own request tracing (or
anything else) sees the request; the route still gets it."""

from __future__ import annotations

import httpx
from fastapi import Request
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.query_token import STATE_KEY, Gateway, split_tokens

TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-claims.secret-signature"


async def test_traces_never_see_the_token() -> None:
    """FastAPI's server span records the query without the token; the route reads it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Gateway(telemetry={"tracer_provider": provider})

    @app.get("/events")
    async def events(request: Request) -> dict[str, object]:
        return {"query": request.url.query, "tokens": getattr(request.state, STATE_KEY, [])}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/events", params={"a": "1", "access_token": TOKEN})
    assert answer.json() == {"query": "a=1", "tokens": [TOKEN]}
    spans = exporter.get_finished_spans()
    assert spans
    recorded = " ".join(str(value) for span in spans for value in (span.attributes or {}).values())
    assert "a=1" in recorded
    assert TOKEN not in recorded
    assert "access_token" not in recorded


def test_access_tokens_are_taken_out_of_the_query() -> None:
    """Every access_token (plain or percent-encoded name) is removed; the rest is kept as is."""
    kept, tokens = split_tokens(b"a=1&access_token=abc.def&b=%20x&access%5Ftoken=ghi&")
    assert (kept, tokens) == (b"a=1&b=%20x", ["abc.def", "ghi"])
