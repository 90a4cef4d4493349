"""Malformed JWT headers (and payloads): whatever JSON a token's segments hold, a correctly
signed token whose `alg` or `kid` is not a string, whose header or payload is not a JSON object,
or that nests deeper than a parser recurses is 401 with `WWW-Authenticate: Bearer`, never 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import uuid

import httpx
import pytest

from tests.factories import JWT_SECRET, bearer, claims

ME = "/api/v1/me/concurrency"
USER = str(uuid.uuid4())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_signed(header: str | bytes, payload: str | None = None) -> str:
    """A token with this exact header text (any JSON, or none), HS256-signed with the right
    secret, so only the header's shape can make it fail."""
    raw = header.encode() if isinstance(header, str) else header
    body = json.dumps(claims(USER)) if payload is None else payload
    signing_input = f"{_b64(raw)}.{_b64(body.encode())}"
    signature = hmac.new(JWT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


# Header (and payload) shapes PyJWT parses but a verifier must not trip over: each is 401.
MALFORMED: dict[str, tuple[str | bytes, str | None]] = {
    "alg a list": ('{"alg": ["HS256"], "typ": "JWT"}', None),
    "alg an object": ('{"alg": {"HS256": true}}', None),
    "alg a number": ('{"alg": 256}', None),
    "alg null": ('{"alg": null}', None),
    "no alg": ('{"typ": "JWT"}', None),
    "asymmetric alg, kid a list": ('{"alg": "ES256", "kid": ["es-1"]}', None),
    "asymmetric alg, kid an object": ('{"alg": "ES256", "kid": {"id": "es-1"}}', None),
    "asymmetric alg, kid a number": ('{"alg": "RS256", "kid": 1}', None),
    "HS256, kid a list": ('{"alg": "HS256", "kid": ["x"]}', None),
    "crit a string": ('{"alg": "HS256", "crit": "exp"}', None),
    "unsupported crit": ('{"alg": "HS256", "crit": ["exp"]}', None),
    "b64 false": ('{"alg": "HS256", "b64": false, "crit": ["b64"]}', None),
    "header an array": ('["HS256"]', None),
    "header a string": ('"HS256"', None),
    "header null": ("null", None),
    "header a number": ("1", None),
    "header not JSON": ("alg=HS256", None),
    "header not UTF-8": (b'{"alg": "HS256\xff"}', None),
    "header nested 2500 deep": ("[" * 2500 + "]" * 2500, None),
    "payload an array": ('{"alg": "HS256"}', "[1, 2]"),
    "payload nested 2500 deep": ('{"alg": "HS256"}', "[" * 2500 + "]" * 2500),
    "payload iat Infinity": ('{"alg": "HS256"}', json.dumps({**claims(USER), "iat": math.inf})),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_header_is_401(client: httpx.AsyncClient, case: str) -> None:
    """A header whose `alg` or `kid` is not a string, a header that is not a JSON object, or a
    payload that is not one, is 401 with a Bearer challenge on both APIs, never 500."""
    token = _raw_signed(*MALFORMED[case])
    response = await client.get(ME, headers=bearer(token))
    legacy = await client.post(
        "/api/coursegen/generate", headers=bearer(token), json={"courseId": str(uuid.uuid4())}
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "/problems/unauthorized"
    assert legacy.status_code == 401, legacy.text
    assert legacy.headers["www-authenticate"] == "Bearer"
