"""`/api/v1/me/concurrency`: the caller's tier, limit and admitted courses;
`/api/v1/me/webhook-secret`: the secret that signs the caller's webhooks."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import PrincipalDep, StateDep
from api.problems import doc
from api.schemas import ConcurrencyResponse, WebhookSecretResponse
from webhooks.signing import user_secret

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


@router.get(
    "/webhook-secret",
    response_model=WebhookSecretResponse,
    responses={
        401: doc(401, "unauthorized", "missing or invalid bearer token"),
        403: doc(403, "forbidden", "anonymous users cannot start course generation"),
    },
    summary="The caller's webhook signing secret",
)
async def read_webhook_secret(
    state: StateDep, principal: PrincipalDep, response: Response
) -> WebhookSecretResponse:
    """The `whsec_…` secret whose Standard Webhooks signatures the caller's webhooks carry."""
    response.headers["Cache-Control"] = "no-store"
    return WebhookSecretResponse(
        secret=user_secret(state.settings.webhook.secret, principal.user_id)
    )
