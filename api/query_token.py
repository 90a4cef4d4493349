"""The event stream's `access_token` query parameter (a browser's EventSource cannot send an
`Authorization` header).

The app (`Gateway`) takes every `access_token` out of the query string before anything else
sees the request, so no access log, error line or trace records it, and keeps the values in
the request's state; only `stream_principal` reads them there, so every other route ignores a
token sent that way.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import Depends, FastAPI, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials
from starlette.types import Receive, Scope, Send

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


class Gateway(FastAPI):
    """FastAPI, but every `access_token` leaves the query string before anything sees the
    request: FastAPI's own request tracing, every middleware, the server's access log (the
    scope is changed in place). The values wait in the request's state."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            take_tokens(scope)
        await super().__call__(scope, receive, send)


def take_tokens(scope: Scope) -> None:
    if PARAM.encode() in scope.get("query_string", b""):
        kept, tokens = split_tokens(scope["query_string"])
        if tokens:
            scope["query_string"] = kept
            scope.setdefault("state", {})[STATE_KEY] = tokens


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
