"""`/api/v1/me/concurrency`: the caller's tier, limit and admitted courses."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, StateDep
from api.problems import doc
from api.schemas import ConcurrencyResponse

router = APIRouter(prefix="/api/v1/me", tags=["me"])


@router.get(
    "/concurrency",
    response_model=ConcurrencyResponse,
    responses={
        401: doc(401, "unauthorized", "missing or invalid bearer token"),
        403: doc(403, "forbidden", "anonymous users cannot start course generation"),
        503: doc(503, "dependency-unavailable", "redis is unavailable"),
    },
    summary="The caller's concurrent generations",
)
async def read_concurrency(state: StateDep, principal: PrincipalDep) -> ConcurrencyResponse:
    """The caller's tier, its limit, and the courses currently holding a slot."""
    return await state.runs.concurrency(principal)
