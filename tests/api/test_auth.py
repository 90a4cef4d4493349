"""The JWT attack matrix: every forged, malformed or misused token (no signature, another key,
HS/RS key confusion, bad or missing claims, oversized) is 401 with `WWW-Authenticate: Bearer`,
never 500; valid tokens of each kind pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from settings import Settings
from tests.api.support import JwksServer, running_app
from tests.factories import (
    ISSUER,
    JWT_SECRET,
    Keys,
    bearer,
    claims,
    es_token,
    hs_token,
    make_settings,
    rs_token,
)

ME = "/api/v1/me/concurrency"
USER = str(uuid.uuid4())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_signed(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def _rsa_pem(keys: Keys) -> bytes:
    return keys.rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _other_ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _other_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ago(seconds: int) -> int:
    return int(time.time()) - seconds


Headers = Callable[[Keys], dict[str, str] | list[tuple[str, str]]]

ATTACKS: dict[str, Headers] = {
    "no header": lambda k: {},
    "empty bearer": lambda k: {"Authorization": "Bearer "},
    "basic scheme": lambda k: {"Authorization": "Basic dXNlcjpwYXNz"},
    "token without scheme": lambda k: {"Authorization": hs_token(USER)},
    "garbage": lambda k: bearer("not-a-jwt"),
    "two segments": lambda k: bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0"),
    "four segments": lambda k: bearer(hs_token(USER) + ".extra"),
    "non-base64 junk": lambda k: bearer("%%%.@@@.!!!"),
    "alg none": lambda k: bearer(_unsigned(claims(USER))),
    "alg NONE upper-case": lambda k: bearer(_unsigned(claims(USER), alg="NONE")),
    "wrong HS256 secret": lambda k: bearer(
        jwt.encode(claims(USER), "another-secret-0123456789abcdef0123456789", "HS256")
    ),
    "HS512 with the right secret": lambda k: bearer(jwt.encode(claims(USER), JWT_SECRET, "HS512")),
    "ES256 by another key, known kid": lambda k: bearer(
        jwt.encode(claims(USER), _other_ec(), "ES256", headers={"kid": "es-1"})
    ),
    "RS256 by another key, known kid": lambda k: bearer(
        jwt.encode(claims(USER), _other_rsa(), "RS256", headers={"kid": "rs-1"})
    ),
    "HS256 keyed with the RSA public PEM": lambda k: bearer(
        _hand_signed({"alg": "HS256", "typ": "JWT", "kid": "rs-1"}, claims(USER), _rsa_pem(k))
    ),
    "HS256 keyed with the EC JWK JSON": lambda k: bearer(
        _hand_signed(
            {"alg": "HS256", "typ": "JWT", "kid": "es-1"},
            claims(USER),
            json.dumps(k.jwks()["keys"][0]).encode(),
        )
    ),
    "RS256 header naming the EC key": lambda k: bearer(
        jwt.encode(claims(USER), k.rsa_key, "RS256", headers={"kid": "es-1"})
    ),
    "expired": lambda k: bearer(hs_token(USER, exp=_ago(120), iat=_ago(3600))),
    "future nbf": lambda k: bearer(hs_token(USER, nbf=_ago(-300))),
    "future iat": lambda k: bearer(hs_token(USER, iat=_ago(-300))),
    "audience anon": lambda k: bearer(hs_token(USER, aud="anon")),
    "no audience": lambda k: bearer(hs_token(USER, aud=None)),
    "no exp": lambda k: bearer(hs_token(USER, exp=None)),
    "no sub": lambda k: bearer(
        jwt.encode({c: v for c, v in claims(USER).items() if c != "sub"}, JWT_SECRET, "HS256")
    ),
    "sub not a UUID": lambda k: bearer(hs_token("admin")),
    "sub an integer": lambda k: bearer(
        jwt.encode({**claims(USER), "sub": 42}, JWT_SECRET, "HS256")
    ),
    "service_role API key": lambda k: bearer(
        jwt.encode(
            {"iss": "supabase", "ref": "x", "role": "service_role", "iat": _ago(0),
             "exp": _ago(-3600)},
            JWT_SECRET,
            "HS256",
        )
    ),
    "role anon": lambda k: bearer(hs_token(USER, role="anon")),
    "oversized (valid signature)": lambda k: bearer(hs_token(USER, pad="x" * 9000)),
    "unknown kid": lambda k: bearer(es_token(k, USER, kid="nope")),
    "kid path traversal": lambda k: bearer(es_token(k, USER, kid="../../etc/passwd")),
    "ES256 without kid": lambda k: bearer(jwt.encode(claims(USER), k.ec_key, "ES256")),
    "two Authorization headers": lambda k: [
        ("Authorization", f"Bearer {hs_token(USER)}"),
        ("Authorization", f"Bearer {hs_token(USER)}"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("case", list(ATTACKS))
async def test_attack_is_401(client: httpx.AsyncClient, keys: Keys, case: str) -> None:
    """Each forged, malformed or misused token is refused with 401 and a Bearer challenge."""
    response = await client.get(ME, headers=ATTACKS[case](keys))
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/unauthorized"


async def test_token_in_query_string_is_ignored(client: httpx.AsyncClient) -> None:
    """A token passed in the query string instead of the header is not accepted."""
    response = await client.get(ME, params={"access_token": hs_token(USER)})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "mint",
    [
        lambda k: hs_token(USER),
        lambda k: es_token(k, USER),
        lambda k: rs_token(k, USER),
        lambda k: hs_token(USER, exp=_ago(10)),
    ],
    ids=["HS256", "ES256", "RS256", "expired-within-leeway"],
)
async def test_valid_tokens_pass(
    client: httpx.AsyncClient, keys: Keys, mint: Callable[[Keys], str]
) -> None:
    """HS256 (secret), ES256 and RS256 (JWKS) tokens are accepted, with a 30 s leeway."""
    response = await client.get(ME, headers=bearer(mint(keys)))
    assert response.status_code == 200, response.text


async def test_lower_case_scheme_is_accepted(client: httpx.AsyncClient) -> None:
    """The auth scheme is case-insensitive (RFC 7235)."""
    response = await client.get(ME, headers={"Authorization": f"bearer {hs_token(USER)}"})
    assert response.status_code == 200


async def test_legacy_endpoint_401_body(client: httpx.AsyncClient) -> None:
    """The old endpoint answers 401 with its own error text."""
    response = await client.post(
        "/api/coursegen/generate",
        json={"courseId": str(uuid.uuid4())},
        headers=bearer("garbage"),
    )
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized: Invalid or missing authentication token"}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_anonymous_user_is_403(client: httpx.AsyncClient) -> None:
    """An anonymous Supabase user is refused with 403 forbidden by default."""
    response = await client.get(ME, headers=bearer(hs_token(USER, is_anonymous=True)))
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/forbidden"


async def test_anonymous_allowed_when_configured(api_env: dict[str, str]) -> None:
    """With ALLOW_ANONYMOUS=true an anonymous user is served."""
    settings = make_settings(api_env, ALLOW_ANONYMOUS="true")
    async with running_app(settings) as app:
        response = await app.get(ME, headers=bearer(hs_token(USER, is_anonymous=True)))
    assert response.status_code == 200, response.text


async def test_issuer_checked_when_set(api_env: dict[str, str]) -> None:
    """With AUTH_ISSUER set, another project's issuer and a missing issuer are 401."""
    settings = make_settings(api_env, AUTH_ISSUER=ISSUER)
    async with running_app(settings) as app:
        good = await app.get(ME, headers=bearer(hs_token(USER)))
        wrong = await app.get(ME, headers=bearer(hs_token(USER, iss="https://other.supabase.co")))
        missing = await app.get(ME, headers=bearer(hs_token(USER, iss=None)))
    assert good.status_code == 200
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.headers["www-authenticate"] == "Bearer"


def _settings_with_jwks(api_env: dict[str, str], url: str) -> Settings:
    return make_settings(api_env, SUPABASE_JWKS_URL=url)


async def test_jwks_down_on_cold_cache_is_503(api_env: dict[str, str], keys: Keys) -> None:
    """A JWKS endpoint that is down while nothing is cached answers 503 with Retry-After."""
    server = JwksServer(keys.jwks())
    server.down = True
    with server.running():
        async with running_app(_settings_with_jwks(api_env, server.url)) as app:
            response = await app.get(ME, headers=bearer(es_token(keys, USER)))
            hs = await app.get(ME, headers=bearer(hs_token(USER)))
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "/problems/dependency-unavailable"
    assert "retry-after" in response.headers
    assert hs.status_code == 200


async def test_jwks_down_with_warm_cache_keeps_verifying(
    api_env: dict[str, str], keys: Keys
) -> None:
    """Once keys are cached, an outage of the JWKS endpoint does not stop verification."""
    server = JwksServer(keys.jwks())
    with server.running():
        async with running_app(_settings_with_jwks(api_env, server.url)) as app:
            server.down = True
            response = await app.get(ME, headers=bearer(es_token(keys, USER)))
            unknown = await app.get(ME, headers=bearer(es_token(keys, USER, kid="new")))
    assert response.status_code == 200, response.text
    assert unknown.status_code == 401


async def test_unknown_kids_do_not_amplify_fetches(api_env: dict[str, str], keys: Keys) -> None:
    """Random unknown `kid`s cause at most one refetch per 30 s cooldown."""
    server = JwksServer(keys.jwks())
    with server.running():
        async with running_app(_settings_with_jwks(api_env, server.url)) as app:
            before = server.fetches
            for n in range(5):
                response = await app.get(ME, headers=bearer(es_token(keys, USER, kid=f"k{n}")))
                assert response.status_code == 401
            assert server.fetches - before <= 1
