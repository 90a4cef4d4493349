"""Webhook delivery: the signing secret, how long a delivery is retried, and the hosts a
webhook may name."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from settings.base import Group, split_csv

DEV_WEBHOOK_SECRET = "development-only-webhook-secret-change-me-0123456789"


class WebhookSettings(Group):
    secret: str = Field(
        default=DEV_WEBHOOK_SECRET, min_length=16, validation_alias="WEBHOOK_SECRET"
    )
    retry_seconds: int = Field(default=3600, gt=0, validation_alias="WEBHOOK_RETRY_SECONDS")
    allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="WEBHOOK_ALLOW_HOSTS"
    )

    @field_validator("allow_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        hosts = split_csv(value)
        return [str(h).lower() for h in hosts] if isinstance(hosts, list) else hosts
