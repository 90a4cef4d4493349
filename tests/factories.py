"""Test data, made one way for every test tier and for `bench/`: settings, users, courses, tokens.

Rows are written straight into the session's database with the service's own pool, as the
frontend and Supabase would have written them before a generation starts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import jwt
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from admission import Leases
from settings import GROUPS, Settings

# The HS256 secret every test app, test worker and benchmark gateway is configured with.
JWT_SECRET = "api-tests-hs256-secret-" + "0123456789abcdef" * 4
ISSUER = "https://project.supabase.co/auth/v1"
TITLE = "Test course"


# Settings


def make_settings(env: Mapping[str, str] | None = None, /, **values: str) -> Settings:
    """The settings tree a process would load from its environment (never a `.env` file), with
    `env` and then `values` on top, each given by its environment name (`STAGE_CAPACITY="1"`)."""
    given = {**(env or {}), **values}
    groups: dict[str, Any] = {
        name: group(_env_file=None, **given) for name, group in GROUPS.items()
    }
    return Settings(**groups)


def queue_env(task_queue: str, key_prefix: str) -> dict[str, str]:
    """The environment of a worker of one's own: task queues `<task_queue>` (orchestration) and
    `<task_queue>-stages`, and its own Redis key prefix."""
    return {
        "TEMPORAL_TASK_QUEUE": task_queue,
        "TEMPORAL_STAGE_TASK_QUEUE": f"{task_queue}-stages",
        "REDIS_KEY_PREFIX": key_prefix,
    }


# Lease store


async def write_epoch(redis: aioredis.Redis, prefix: str) -> None:
    """Give a fresh key prefix its epoch, as the reconciler's rebuild of an empty store would:
    without it the lease store admits no one (`LeaseEpochMissing`)."""
    leases = Leases(redis, prefix)
    assert await leases.finish_rebuild(await leases.begin_rebuild()), "epoch not written"


# Rows


def run_start() -> datetime:
    """A run's start time for a claim: now, so claims made one after another are ordered."""
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


async def insert_user(pool: asyncpg.Pool, tier: str | None = None, *, role: str = "user") -> str:
    """An `auth.users` row, plus a `user_profiles` row with `tier` and `role` when `tier` is
    given (without one the user's tier is FREE); returns the user id."""
    user_id = new_id()
    await pool.execute("INSERT INTO auth.users (id) VALUES ($1)", uuid.UUID(user_id))
    if tier is not None:
        await pool.execute(
            "INSERT INTO public.user_profiles (id, tier, role) VALUES ($1, $2, $3)",
            uuid.UUID(user_id),
            tier,
            role,
        )
    return user_id


async def insert_course(
    pool: asyncpg.Pool,
    user_id: str | None = None,
    *,
    simulation: Mapping[str, Any] | None = None,
    files: Any = None,
    progress: Any = None,
    status: str | None = None,
    run_id: str | None = None,
    title: str = TITLE,
) -> str:
    """A course row owned by `user_id` (a fresh user without a profile when None); returns its id.

    Its `generation_progress` is `progress` as given, or, when `simulation` or `files` is
    given, `{"simulation": simulation, "files": files}` (each key only when given): the
    simulated stages' knobs (`stage_seconds`, `fail_at_step`, `hold_at_step`, …) and the
    uploaded files that make the run DOCUMENT_PROCESSING. Without any of them it is NULL, as
    for a course the frontend has just created.
    """
    if simulation is not None or files is not None:
        if progress is not None:
            raise ValueError("give `progress` or the `simulation`/`files` knobs, not both")
        progress = {} if simulation is None else {"simulation": dict(simulation)}
        if files is not None:
            progress["files"] = files
    owner = user_id or await insert_user(pool)
    course_id = new_id()
    await pool.execute(
        "INSERT INTO public.courses (id, user_id, title, generation_progress, generation_status,"
        " run_id) VALUES ($1, $2, $3, $4, $5::public.generation_status, $6)",
        uuid.UUID(course_id),
        uuid.UUID(owner),
        title,
        progress,
        status,
        run_id,
    )
    return course_id


# Tokens


@dataclass
class Keys:
    """Signing keys of the tests: one ES256 and one RS256 key, published as a JWKS document."""

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
    """A signed-in Supabase user's claims, valid for an hour; an `extra` claim set to None is
    left out."""
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


def hs_token(sub: str, *, secret: str = JWT_SECRET, **extra: Any) -> str:
    return jwt.encode(claims(sub, **extra), secret, algorithm="HS256")


def es_token(keys: Keys, sub: str, kid: str = "es-1", **extra: Any) -> str:
    return jwt.encode(claims(sub, **extra), keys.ec_key, algorithm="ES256", headers={"kid": kid})


def rs_token(keys: Keys, sub: str, kid: str = "rs-1", **extra: Any) -> str:
    return jwt.encode(claims(sub, **extra), keys.rsa_key, algorithm="RS256", headers={"kid": kid})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
