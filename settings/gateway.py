"""The gateway: who may call it (auth), how it serves (uvicorn, CORS, start limits), and its
cache of closed runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from settings.base import Group, split_csv

DEV_JWT_SECRET = "development-only-secret-change-me-0123456789abcdef"


class AuthSettings(Group):
    jwt_secret: str = Field(default=DEV_JWT_SECRET, validation_alias="SUPABASE_JWT_SECRET")
    jwks_url: str | None = Field(default=None, validation_alias="SUPABASE_JWKS_URL")
    audience: str = Field(default="authenticated", validation_alias="AUTH_AUDIENCE")
    issuer: str | None = Field(default=None, validation_alias="AUTH_ISSUER")
    leeway_seconds: int = Field(default=30, ge=0, validation_alias="AUTH_LEEWAY_SECONDS")
    allow_anonymous: bool = Field(default=False, validation_alias="ALLOW_ANONYMOUS")


class ApiSettings(Group):
    host: str = Field(default="127.0.0.1", min_length=1, validation_alias="API_HOST")
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="API_PORT")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="CORS_ORIGINS"
    )
    allow_http_webhooks: bool = Field(default=False, validation_alias="ALLOW_HTTP_WEBHOOKS")
    start_rate_limit_per_minute: int = Field(
        default=30, ge=0, validation_alias="START_RATE_LIMIT_PER_MINUTE"
    )
    start_timeout_seconds: float = Field(default=5, gt=0, validation_alias="START_TIMEOUT_SECONDS")
    # uvicorn's own options (`auto` takes uvloop and httptools, both installed with uvicorn).
    loop: Literal["auto", "asyncio", "uvloop"] = Field(default="auto", validation_alias="API_LOOP")
    http: Literal["auto", "h11", "httptools"] = Field(default="auto", validation_alias="API_HTTP")
    backlog: int = Field(default=2048, ge=1, validation_alias="API_BACKLOG")
    # `heap.freeze_start_up_heap` once the lifespan has opened the stores.
    gc_freeze: bool = Field(default=True, validation_alias="API_GC_FREEZE")

    _split = field_validator("cors_origins", mode="before")(split_csv)


class StatusSettings(Group):
    """How many closed runs' describes one gateway process keeps, and for how long: a closed
    run's status never changes, so a status read of it needs no second describe."""

    closed_run_cache_size: int = Field(
        default=10_000, ge=0, validation_alias="CLOSED_RUN_CACHE_SIZE"
    )
    closed_run_cache_ttl_seconds: float = Field(
        default=600, gt=0, validation_alias="CLOSED_RUN_CACHE_TTL_SECONDS"
    )
