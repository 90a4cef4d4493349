"""`db.ids.parse_uuid`: the one UUID check of the API and the repository."""

from __future__ import annotations

import uuid

import pytest

from db.ids import parse_uuid

VALUE = uuid.UUID("0b9e8f1c-3a7d-4c55-9d2e-6f1a2b3c4d5e")


@pytest.mark.parametrize(
    "raw", [str(VALUE), str(VALUE).upper(), VALUE], ids=["lower", "upper", "uuid"]
)
def test_accepts_the_36_character_form_and_uuids(raw: object) -> None:
    """The hyphenated form (any case) and a `uuid.UUID` parse to the same value."""
    assert parse_uuid(raw) == VALUE


@pytest.mark.parametrize(
    "raw",
    [None, 42, "", "not-a-uuid", VALUE.hex, f"{{{VALUE}}}", f"urn:uuid:{VALUE}", "z" * 36],
)
def test_refuses_anything_else(raw: object) -> None:
    """Other types, the bare 32-digit and braced/URN forms and non-hex text are not ids."""
    assert parse_uuid(raw) is None
