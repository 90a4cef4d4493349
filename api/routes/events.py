"""`/api/v1/courses/{courseId}/generation/events`: the course's progress as Server-Sent Events.

What a stream sends and when it ends: [progress events](../../docs/progress-events.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from starlette.responses import Response

from api.deps import StateDep
from api.problems import doc
from api.query_token import StreamPrincipalDep
from api.routes.generation import CourseId

router = APIRouter(prefix="/api/v1/courses/{courseId}/generation", tags=["generation"])

EXAMPLE = (
    "id: 7\r\nevent: progress\r\n"
    'data: {"courseId":"3f1c2a9e-5b7d-4e2a-9c1f-0a8b7c6d5e4f","seq":7,'
    '"generationStatus":"generating_structure","currentStep":3,"percentage":50,'
    '"message":"Генерация структуры курса...","workflowStatus":"RUNNING"}\r\n\r\n'
    ": ping - 2026-01-01 10:00:15+00:00\r\n\r\n"
)
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "`text/event-stream`: the course's current state, then one event per change. "
            "Each event has `id` (the course's progress seq, strictly growing), `event` "
            "(`progress`, or `terminal` for completed/failed/cancelled, after which the stream "
            "ends) and one line of JSON `data` {courseId, seq, generationStatus, currentStep, "
            "percentage, message, workflowStatus}. A comment line every 15 s keeps it alive."
        ),
        "content": {"text/event-stream": {"schema": {"type": "string"}, "example": EXAMPLE}},
    },
    204: {
        "description": "Nothing to follow: the course is terminal and its run closed, or "
        "`Last-Event-ID` already reached the terminal event"
    },
    401: doc(401, "unauthorized", "missing or invalid bearer token"),
    403: doc(403, "forbidden", "anonymous users cannot start course generation"),
    404: doc(404, "not-found", "no such course"),
    422: doc(422, "validation", "the request is invalid"),
    503: doc(503, "dependency-unavailable", "postgresql is unavailable"),
}


@router.get(
    "/events",
    summary="Follow the course's generation as Server-Sent Events",
    responses=RESPONSES,
    response_class=Response,
)
async def generation_events(
    course_id: CourseId,
    state: StateDep,
    principal: StreamPrincipalDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="Resume after this event id (browsers send it when they reconnect)",
        ),
    ] = None,
) -> Response:
    """Authenticate with the `Authorization` header or, from a browser's EventSource, the
    `access_token` query parameter (same token, same checks)."""
    course = str(course_id)
    return await state.events.stream(
        course, lambda: state.starter.owned_course(principal, course), last_event_id
    )
