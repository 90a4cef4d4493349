"""Supabase access-token verification: the first check of every start and read.

HS256 tokens are checked against `SUPABASE_JWT_SECRET`; ES256/RS256 tokens against the JWKS at
`SUPABASE_JWKS_URL`, pinned to the algorithm of the key their `kid` names, so `alg: none` and
HS/RS confusion cannot pass. Every failure is `Unauthorized` (401); a JWKS endpoint that is down
while the cache is cold is `DependencyUnavailable` (503).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog

from api.lru import LruCache
from api.problems import DependencyUnavailable, Forbidden, Unauthorized
from db.ids import parse_uuid
from settings import AuthSettings

MAX_TOKEN_BYTES = 8 * 1024
# Verified tokens kept per process, so a client polling status does not pay the signature check
# (about half a millisecond of CPU) on every read: a token stays accepted until its `exp` plus
# leeway, exactly as a fresh check would accept it, and at most this long after its check.
VERIFIED_TOKENS = 10_000
VERIFIED_TOKEN_SECONDS = 60.0
ASYMMETRIC = frozenset({"ES256", "RS256"})
log = structlog.get_logger("api.auth")


@dataclass(frozen=True)
class Principal:
    """The verified caller: a Supabase user id and the server-side tier claim, if any."""

    user_id: str
    claimed_tier: str | None


class JwksCache:
    """Async JWKS cache: keys live `ttl` seconds; an unknown `kid` refetches at most every
    `cooldown` seconds; a failed refetch keeps the keys already known."""

    def __init__(
        self, url: str, http: httpx.AsyncClient, ttl: float = 300, cooldown: float = 30
    ) -> None:
        self._url, self._http, self._ttl, self._cooldown = url, http, ttl, cooldown
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> jwt.PyJWK | None:
        """The key named `kid`, or None when the JWKS does not list it."""
        if kid in self._keys and not self._stale():
            return self._keys[kid]
        if self._may_fetch():
            async with self._lock:
                if (kid not in self._keys or self._stale()) and self._may_fetch():
                    await self._refresh()
        elif not self._keys:
            raise DependencyUnavailable("the token key set (JWKS) is unreachable")
        return self._keys.get(kid)

    async def warm(self) -> None:
        """Fetch once at start so the first request does not wait; failures are logged."""
        try:
            await self._refresh()
        except DependencyUnavailable:
            self._attempted_at = float("-inf")

    def _may_fetch(self) -> bool:
        return time.monotonic() - self._attempted_at >= self._cooldown

    def _stale(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at > self._ttl

    async def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        try:
            response = await self._http.get(self._url, timeout=3)
            response.raise_for_status()
            self._keys = _parse_jwks(response.json())
            self._fetched_at = time.monotonic()
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("jwks fetch failed", error=type(exc).__name__, url=self._url)
            if not self._keys:
                raise DependencyUnavailable("the token key set (JWKS) is unreachable") from None


def _parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK.from_dict(entry)
        except jwt.PyJWTError:
            continue
        if key.key_id and key.algorithm_name in ASYMMETRIC:
            keys[key.key_id] = key
    return keys


class TokenVerifier:
    """Turns an `Authorization` header into a `Principal` or raises a problem."""

    def __init__(self, settings: AuthSettings, jwks: JwksCache | None) -> None:
        self._settings = settings
        self._jwks = jwks
        self._verified: LruCache[str, Principal] = LruCache(VERIFIED_TOKENS)

    async def principal(self, authorization: list[str]) -> Principal:
        token = _bearer_token(authorization)
        known = self._verified.get(token)
        if known is not None:
            return known
        key, algorithm = await self._key_for(token)
        claims = self._decode(token, key, algorithm)
        principal = self._principal(claims)
        self._verified.put(token, principal, self._still_valid(claims))
        return principal

    def _still_valid(self, claims: dict[str, Any]) -> float:
        """Seconds a verified token stays acceptable: until `exp` plus leeway, at most
        `VERIFIED_TOKEN_SECONDS`. (A check that passed now passes later too, but for `exp`.)"""
        expires = float(claims["exp"]) + self._settings.leeway_seconds
        return min(VERIFIED_TOKEN_SECONDS, expires - time.time())

    async def _key_for(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise Unauthorized("the token is malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str):  # a list or an object is not hashable: no `in` test
            raise Unauthorized("the token's algorithm is not accepted")
        if alg == "HS256":
            return self._settings.jwt_secret, "HS256"
        if alg not in ASYMMETRIC or self._jwks is None:
            raise Unauthorized("the token's algorithm is not accepted")
        kid = header.get("kid")
        jwk = await self._jwks.get(kid) if isinstance(kid, str) and kid else None
        if jwk is None or jwk.algorithm_name != alg:
            raise Unauthorized("the token's signing key is unknown")
        return jwk.key, alg

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        required = ["exp", "iat", "sub", "aud"] + (["iss"] if self._settings.issuer else [])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._settings.audience,
                issuer=self._settings.issuer or None,
                leeway=self._settings.leeway_seconds,
                options={"require": required},
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise Unauthorized("the token is invalid or expired") from None
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal:
        user_id = _user_id(claims.get("sub"))
        if claims.get("role", "authenticated") != "authenticated":
            raise Unauthorized("the token is not a user access token")
        anonymous = claims.get("is_anonymous") is True
        if anonymous and not self._settings.allow_anonymous:
            raise Forbidden("anonymous users cannot start course generation")
        app_metadata = claims.get("app_metadata")
        tier = app_metadata.get("tier") if isinstance(app_metadata, dict) else None
        return Principal(user_id=user_id, claimed_tier=tier if isinstance(tier, str) else None)


def _bearer_token(authorization: list[str]) -> str:
    if not authorization:
        raise Unauthorized("a bearer token is required")
    if len(authorization) > 1:
        raise Unauthorized("exactly one Authorization header is allowed")
    scheme, _, token = authorization[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthorized("a bearer token is required")
    if len(token.encode()) > MAX_TOKEN_BYTES:
        raise Unauthorized("the token is too large")
    return token


def _user_id(subject: object) -> str:
    parsed = parse_uuid(subject)
    if parsed is None:
        raise Unauthorized("the token's subject is not a user id")
    return str(parsed)
