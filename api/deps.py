"""`Annotated` dependency aliases reading the lifespan's typed state."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal
from api.state import ApiState
from db.ids import parse_uuid
from telemetry import bind_context
from workflows.types import workflow_id_for

bearer = HTTPBearer(auto_error=False, description="A Supabase access token")


async def get_state(request: Request) -> ApiState:
    """Async, like every dependency here: FastAPI runs a plain `def` one in its thread pool, a
    thread hop per request for a dictionary read."""
    return cast(ApiState, request.state.api)


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_principal(
    request: Request,
    state: StateDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    """The verified caller (the `Security` parameter only documents the scheme)."""
    return await state.verifier.principal(request.headers.getlist("authorization"))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def request_id(request: Request) -> str:
    return cast(str, request.scope["state"]["request_id"])


RequestIdDep = Annotated[str, Depends(request_id)]


def bind_course(course_id: str) -> None:
    """Name the course and its run's workflow id on every later log line of the request."""
    bind_context(course_id=course_id, workflow_id=workflow_id_for(course_id))


async def bind_path_course(request: Request) -> None:
    """Router dependency: `bind_course` for a well-formed `{courseId}` in the path."""
    course_id = parse_uuid(request.path_params.get("courseId"))
    if course_id is not None:
        bind_course(str(course_id))
