"""`POST /api/coursegen/generate`: the old frontend's contract, kept as its route answered.

Order of checks as the old route: parse and validate the body, authenticate, load the course,
ownership (403 here, unlike /api/v1), then the same update-with-start as /api/v1. Errors are
`{error, details?}` bodies, rendered by `api.legacy.body`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import ValidationError

from api.deps import RequestIdDep, StateDep, bind_course
from api.legacy import FAILED, LegacyBadRequest
from api.schemas import LegacyError, LegacyGenerateRequest, LegacyGenerateResponse
from api.starts import StartCommand
from db.ids import parse_uuid

router = APIRouter(prefix="/api/coursegen", tags=["compatibility"])


def _error(description: str, example: str) -> dict[str, Any]:
    return {
        "model": LegacyError,
        "description": description,
        "content": {"application/json": {"example": {"error": example}}},
    }


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Bad body", "Invalid request body"),
    401: _error("No or bad token", "Unauthorized: Invalid or missing authentication token"),
    403: _error("Another user's course", "Forbidden: You do not have access to this course"),
    404: _error("No such course", "Course not found"),
    413: _error("Body over 64 KiB", "Payload too large"),
    429: _error(
        "Concurrency limit",
        "Too many concurrent jobs. FREE tier allows 1 concurrent course generation.",
    ),
    500: _error("Could not start", FAILED),
}


async def _parse(request: Request) -> LegacyGenerateRequest:
    try:
        raw = json.loads(await request.body())
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python recurses
        raise LegacyBadRequest("Invalid request body", reason="invalid JSON") from None
    if isinstance(raw, dict) and "courseId" in raw and parse_uuid(raw["courseId"]) is None:
        raise LegacyBadRequest(
            "Invalid courseId format",
            field="courseId",
            value=str(raw["courseId"])[:100],
            expected="UUID",
        )
    try:
        body = LegacyGenerateRequest.model_validate(raw)
    except ValidationError as exc:
        fields = [".".join(str(p) for p in err["loc"]) or "body" for err in exc.errors()]
        raise LegacyBadRequest("Invalid request body", fields=fields) from None
    if body.webhookUrl is not None and not _is_uri(body.webhookUrl):
        raise LegacyBadRequest("Invalid request body", fields=["webhookUrl"])
    return body


def _is_uri(value: str) -> bool:
    parts = urlsplit(value)
    printable = value.isprintable() and not any(char.isspace() for char in value)
    return bool(parts.scheme and (parts.netloc or parts.path)) and printable


@router.post(
    "/generate",
    response_model=LegacyGenerateResponse,
    responses=RESPONSES,
    summary="Start a course generation (old frontend contract)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": LegacyGenerateRequest.model_json_schema()}},
        }
    },
)
async def generate(
    request: Request, state: StateDep, request_id: RequestIdDep
) -> LegacyGenerateResponse:
    """Start generation, or return the job already running for the course (same `jobId`)."""
    body = await _parse(request)
    principal = await state.verifier.principal(request.headers.getlist("authorization"))
    course_id = str(parse_uuid(body.courseId))  # `_parse` refused any other courseId
    bind_course(course_id)
    command = StartCommand(course_id, body.webhookUrl, True, request_id)
    started = await state.starter.start(principal, command)
    return LegacyGenerateResponse(jobId=started.result.workflow_id, courseId=course_id)
