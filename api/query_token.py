"""The event stream's `access_token` query parameter (a browser's EventSource cannot send an
`Authorization` header).

`QueryTokenMiddleware`, outermost, takes every `access_token` out of the query string before
anything else sees the request, so no access log, error line or trace records it, and keeps the
values in the request's state; only `stream_principal` reads them there, so every other route
ignores a token sent that way.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import Principal
from api.deps import StateDep, bearer
from api.problems import Unauthorized

PARAM = "access_token"
STATE_KEY = "query_tokens"
query_scheme = APIKeyQuery(
    name=PARAM,
    scheme_name="AccessTokenQuery",
    auto_error=False,
    description="The same Supabase access token, for clients that cannot send headers",
)


class QueryTokenMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and PARAM.encode() in scope.get("query_string", b""):
            kept, tokens = split_tokens(scope["query_string"])
            if tokens:
                scope["query_string"] = kept  # in place: the server's own access log reads it
                scope.setdefault("state", {})[STATE_KEY] = tokens
        await self.app(scope, receive, send)


def split_tokens(query: bytes) -> tuple[bytes, list[str]]:
    """The query string without its `access_token` parameters, and their values."""
    kept: list[bytes] = []
    tokens: list[str] = []
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if unquote_plus(key.decode("latin-1")) == PARAM:
            tokens.append(unquote_plus(value.decode("latin-1")))
        elif part:
            kept.append(part)
    return b"&".join(kept), tokens


async def stream_principal(
    request: Request,
    state: StateDep,
    _header: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    _query: Annotated[str | None, Security(query_scheme)],
) -> Principal:
    """The caller, from the `Authorization` header or the `access_token` parameter (exactly one
    of them); the same checks and the same 401s either way."""
    tokens: list[str] = getattr(request.state, STATE_KEY, [])
    headers = request.headers.getlist("authorization")
    if tokens and headers:
        raise Unauthorized("send the token in the Authorization header or as access_token")
    return await state.verifier.principal(headers or [f"Bearer {token}" for token in tokens])


StreamPrincipalDep = Annotated[Principal, Depends(stream_principal)]
