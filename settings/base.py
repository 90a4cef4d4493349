"""What every settings group shares: the `.env` file, unknown names ignored, and how a comma
list in one variable is read."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Group(BaseSettings):
    """One group of settings, each field read from its `validation_alias` only."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=False
    )


def split_csv(value: object) -> object:
    """`a, b,,c` as `["a", "b", "c"]`; anything but a string is left to the field's type."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value
