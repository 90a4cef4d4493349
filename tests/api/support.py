"""Helpers for the API tests: settings, token minting, a local JWKS server, course rows."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

import embedded
import settings as settings_module
from api.app import create_app
from settings import Settings

SECRET = "api-tests-hs256-secret-" + "0123456789abcdef" * 4
ISSUER = "https://project.supabase.co/auth/v1"


def make_settings(env: dict[str, str]) -> Settings:
    """A settings tree from explicit environment-style values (the real names of DESIGN §7)."""
    groups = {
        name: group(_env_file=None, **env)  # type: ignore[call-arg]
        for name, group in settings_module._GROUPS.items()
    }
    return Settings(**groups)


@dataclass
class Keys:
    """Signing keys of the tests: the HS256 secret and one ES256 and one RS256 JWKS key."""

    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwks(self) -> dict[str, Any]:
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec_key.public_key()))
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        return {
            "keys": [
                {**ec_jwk, "kid": "es-1", "alg": "ES256", "use": "sig"},
                {**rsa_jwk, "kid": "rs-1", "alg": "RS256", "use": "sig"},
            ]
        }


def claims(sub: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": sub,
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
        "iss": ISSUER,
        "is_anonymous": False,
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def hs_token(sub: str, **extra: Any) -> str:
    return jwt.encode(claims(sub, **extra), SECRET, algorithm="HS256")


def es_token(keys: Keys, sub: str, kid: str = "es-1", **extra: Any) -> str:
    return jwt.encode(claims(sub, **extra), keys.ec_key, algorithm="ES256", headers={"kid": kid})


def rs_token(keys: Keys, sub: str, kid: str = "rs-1", **extra: Any) -> str:
    return jwt.encode(claims(sub, **extra), keys.rsa_key, algorithm="RS256", headers={"kid": kid})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class JwksServer:
    """A JWKS document served over HTTP on 127.0.0.1; `fetches` counts requests."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document, self.fetches, self.down = document, 0, False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", embedded.free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/auth/v1/.well-known/jwks.json"

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def with_lifespan_state(app: FastAPI, state: dict[str, Any]) -> Any:
    """The app as a server that supports lifespan state would call it (uvicorn copies it)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["state"] = dict(state)
        await app(scope, receive, send)

    return wrapped


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, behind an in-process httpx client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=with_lifespan_state(app, dict(state or {})))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            client.app_state = state  # type: ignore[attr-defined]
            yield client


async def new_user(pool: asyncpg.Pool, tier: str | None = None) -> str:
    user_id = str(uuid.uuid4())
    await pool.execute("INSERT INTO auth.users (id) VALUES ($1)", uuid.UUID(user_id))
    if tier is not None:
        await pool.execute(
            "INSERT INTO public.user_profiles (id, tier) VALUES ($1, $2)", uuid.UUID(user_id), tier
        )
    return user_id


async def new_course(
    pool: asyncpg.Pool,
    user_id: str,
    *,
    stage_seconds: float = 0.2,
    fail_at_step: int | None = None,
    status: str | None = None,
) -> str:
    course_id = str(uuid.uuid4())
    simulation: dict[str, Any] = {"stage_seconds": stage_seconds}
    if fail_at_step is not None:
        simulation["fail_at_step"] = fail_at_step
    await pool.execute(
        "INSERT INTO public.courses (id, user_id, title, generation_progress, generation_status)"
        " VALUES ($1, $2, $3, $4, $5::generation_status)",
        uuid.UUID(course_id),
        uuid.UUID(user_id),
        "Test course",
        {"simulation": simulation},
        status,
    )
    return course_id


async def course_row(pool: asyncpg.Pool, course_id: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT generation_status, workflow_id, run_id, progress_seq, generation_progress"
        " FROM public.courses WHERE id = $1",
        uuid.UUID(course_id),
    )
    assert row is not None
    return row


def generation(course_id: str) -> str:
    return f"/api/v1/courses/{course_id}/generation"


async def wait_status(
    client: httpx.AsyncClient, course_id: str, headers: dict[str, str], *wanted: str
) -> dict[str, Any]:
    """Poll the status endpoint until `generationStatus` is one of `wanted`."""
    from tests.helpers import eventually

    async def reached() -> dict[str, Any]:
        response = await client.get(generation(course_id), headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["generationStatus"] in wanted, body["generationStatus"]
        return body

    return await eventually(reached, timeout=30)
