"""The gateway's Prometheus metrics, served as text on `GET /metrics` (no auth, not under /api).

Every label value is bounded: routes are templates (`/api/v1/courses/{courseId}/generation`,
never a course id; `unmatched` for paths no route serves), methods the standard ones, tiers the
five tiers; no user or course id is ever a label.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware
from workflows.types import AdmissionResult

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template, method and status code",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response, by route template",
    ["route", "method"],
)
ADMISSIONS = Counter(
    "coursegen_admissions_total",
    "Answers of a run's admission to a start request, by tier, decision and reason",
    ["tier", "decision", "reason"],
)
SSE_SUBSCRIBERS = Gauge(
    "coursegen_sse_subscribers", "Clients subscribed to a course's progress stream"
)

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """The process's metrics in the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def count_admission(tier: str, result: AdmissionResult) -> None:
    """One start answered by the run's admission: `admitted` (reason `new_run` or
    `existing_run`), `rejected` (`user_limit`/`global_limit`), `unavailable`, `closing`."""
    ADMISSIONS.labels(tier, result.decision, admission_reason(result)).inc()


def admission_reason(result: AdmissionResult) -> str:
    if result.decision == "admitted":
        return "new_run" if result.new_run else "existing_run"
    return result.reason or result.decision


class HttpMetricsMiddleware(HttpMiddleware):
    """Count and time every HTTP request by its route template, method and status."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, status = time.perf_counter(), 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route, method = route_label(scope), method_label(scope)
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)


def route_label(scope: Scope) -> str:
    """The template of the route the router chose (also for a 405), else `unmatched`."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def method_label(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in METHODS else "other"
