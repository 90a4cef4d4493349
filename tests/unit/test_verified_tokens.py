"""`api.auth.TokenVerifier` keeps the tokens it verified: a repeat is not checked again, a
refused token is checked every time."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from api.auth import TokenVerifier
from api.problems import Forbidden
from tests.factories import JWT_SECRET, hs_token, make_settings, new_id


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    checked: list[str] = []
    real = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    return checked


def _verifier() -> TokenVerifier:
    return TokenVerifier(make_settings(SUPABASE_JWT_SECRET=JWT_SECRET).auth, None)


async def test_a_verified_token_is_checked_once(decodes: list[str]) -> None:
    verifier, user = _verifier(), new_id()
    header = [f"Bearer {hs_token(user, app_metadata={'tier': 'PREMIUM'})}"]
    first = await verifier.principal(header)
    assert await verifier.principal(header) == first
    assert (first.user_id, first.claimed_tier, len(decodes)) == (user, "PREMIUM", 1)


async def test_a_refused_token_is_checked_every_time(decodes: list[str]) -> None:
    verifier = _verifier()
    header = [f"Bearer {hs_token(new_id(), is_anonymous=True)}"]
    for _ in range(2):
        with pytest.raises(Forbidden):
            await verifier.principal(header)
    assert len(decodes) == 2
