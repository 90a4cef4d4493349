"""`/api/v1/courses/{courseId}/generation`: start, status and cancel.

What a start does and answers:
[admission](../../docs/architecture.md#1-admission-gateway--workflow).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Response, status

from api.deps import PrincipalDep, RequestIdDep, StateDep, bind_path_course
from api.problems import MAY_STILL_START, ValidationProblem, doc
from api.schemas import (
    WEBHOOK_PATTERN,
    CancelRequest,
    CancelResponse,
    Links,
    Priority,
    StartRequest,
    StartResponse,
    StatusResponse,
)
from api.starts import StartCommand

router = APIRouter(
    prefix="/api/v1/courses/{courseId}/generation",
    tags=["generation"],
    dependencies=[Depends(bind_path_course)],
)
CourseId = Annotated[UUID, Path(alias="courseId", description="The course's UUID")]

COMMON: dict[int | str, dict[str, Any]] = {
    401: doc(401, "unauthorized", "missing or invalid bearer token"),
    403: doc(403, "forbidden", "anonymous users cannot start course generation"),
    404: doc(404, "not-found", "no such course"),
    422: doc(422, "validation", "the request is invalid"),
    503: doc(503, "dependency-unavailable", "postgresql is unavailable"),
}
START_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON,
    200: {
        "model": StartResponse,
        "description": "A run of this course is already going; the same run is returned",
        "headers": {"Location": {"schema": {"type": "string"}}},
    },
    202: {
        "description": "A new run was admitted",
        "headers": {"Location": {"schema": {"type": "string"}}},
    },
    409: doc(409, "already-completed", "the course is completed; send regenerate: true"),
    429: doc(
        429,
        "concurrency-limit",
        "the FREE tier allows 1 concurrent generation(s)",
        reason="user_limit",
        tier="FREE",
        limit=1,
        active=[{"courseId": "…", "workflowId": "course-generation-…", "since": "…"}],
    ),
    503: doc(503, "dependency-unavailable", MAY_STILL_START),
}


def _links(course_id: str) -> Links:
    base = f"/api/v1/courses/{course_id}/generation"
    return Links(self=base, cancel=f"{base}/cancel", events=f"{base}/events")


def check_webhook(url: str | None, allow_http: bool) -> None:
    """`webhookUrl` must be an absolute https URL (http too when ALLOW_HTTP_WEBHOOKS=true)."""
    scheme = "https?" if allow_http else "https"
    if url is not None and not re.fullmatch(WEBHOOK_PATTERN.format(scheme=scheme), url):
        allowed = "http(s)" if allow_http else "https"
        raise ValidationProblem(f"webhookUrl must be an absolute {allowed} URL")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StartResponse,
    responses=START_RESPONSES,
    summary="Start (or attach to) a course generation",
)
async def start_generation(
    course_id: CourseId,
    state: StateDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    response: Response,
    body: Annotated[StartRequest | None, Body()] = None,
) -> StartResponse:
    """Admit a new run (202), or return the run already going (200)."""
    body = body or StartRequest()
    check_webhook(body.webhook_url, state.settings.api.allow_http_webhooks)
    command = StartCommand(str(course_id), body.webhook_url, body.regenerate, request_id)
    started = await state.starter.start(principal, command)
    result, policy = started.result, started.policy
    response.headers["Location"] = f"/api/v1/courses/{course_id}/generation"
    if not result.new_run:
        response.status_code = status.HTTP_200_OK
    return StartResponse(
        course_id=str(course_id),
        workflow_id=result.workflow_id,
        run_id=result.run_id,
        generation_type=result.generation_type,
        tier=result.tier or policy.tier.value,
        priority=Priority(key=policy.priority_key, weight=policy.weight),
        status="started" if result.new_run else "already_running",
        links=_links(str(course_id)),
    )


@router.get(
    "",
    response_model=StatusResponse,
    responses=COMMON,
    summary="The course's generation status and progress",
)
async def read_generation(
    course_id: CourseId, state: StateDep, principal: PrincipalDep
) -> StatusResponse:
    """The course row's status and progress, and the recorded run's Temporal status."""
    return await state.runs.status(principal, str(course_id))


@router.post(
    "/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancelResponse,
    responses={
        **COMMON,
        409: doc(409, "not-running", "the course's generation has ended (completed)"),
    },
    summary="Cancel the course's open run",
)
async def cancel_generation(
    course_id: CourseId,
    state: StateDep,
    principal: PrincipalDep,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> CancelResponse:
    """Ask the open run to cancel; it compensates and ends CANCELED. A course whose row is
    already completed, failed or cancelled is 409 even while its run finishes."""
    reason = body.reason if body else None
    return await state.runs.cancel(principal, str(course_id), reason)
