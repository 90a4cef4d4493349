"""Course and user ids: UUIDs written as 36-character strings. Pure; the API imports it too."""

from __future__ import annotations

import uuid

UUID_TEXT_LENGTH = 36  # 8-4-4-4-12 hex digits with hyphens


def parse_uuid(value: object) -> uuid.UUID | None:
    """`value` as a UUID when it is one or a 36-character UUID string; else None."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or len(value) != UUID_TEXT_LENGTH:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
