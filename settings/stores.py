"""PostgreSQL and Redis: where they are, the pool's size and the key prefix."""

from __future__ import annotations

from pydantic import Field

from settings.base import Group

# Where a process started on its own (not by `make run`) looks when no URL is set.
PROJECT_DATABASE = "course_generator"
DEFAULT_DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/{PROJECT_DATABASE}"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class StoreSettings(Group):
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    redis_key_prefix: str = Field(default="cg", validation_alias="REDIS_KEY_PREFIX")
    db_pool_min_size: int = Field(default=1, ge=0, validation_alias="DB_POOL_MIN_SIZE")
    db_pool_max_size: int = Field(default=10, ge=1, validation_alias="DB_POOL_MAX_SIZE")
    stuck_after_seconds: int = Field(default=900, gt=0, validation_alias="STUCK_AFTER_SECONDS")

    @property
    def database_dsn(self) -> str:
        return self.database_url or DEFAULT_DATABASE_URL

    @property
    def redis_dsn(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL
