"""The receiver example in docs/webhooks.md runs as printed: it answers 204 to an event signed
the way the dispatcher signs, 400 to a forged one, and prints a repeated `webhook-id` once."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from webhooks.signing import signed_headers, user_secret

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def receiver_app(secret: str) -> Any:
    """The doc's Python block, executed with `secret` in place of its placeholder."""
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert '"whsec_…"' in code
    namespace: dict[str, Any] = {}
    exec(compile(code.replace('"whsec_…"', repr(secret)), str(DOC), "exec"), namespace)
    return namespace["app"]


async def test_the_documented_receiver_verifies_signatures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = user_secret("master-secret-for-the-test", "user-1")
    app = receiver_app(secret)
    body = json.dumps({"type": "generation.step", "seq": 3, "percentage": 30})
    headers = signed_headers(secret, "msg_1", body, datetime.now(UTC))
    forged = signed_headers(
        user_secret("another-master", "user-1"), "msg_2", body, datetime.now(UTC)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        path = "/hooks/course-generation"
        assert (await client.post(path, content=body, headers=headers)).status_code == 204
        assert (await client.post(path, content=body, headers=headers)).status_code == 204
        assert (await client.post(path, content=body, headers=forged)).status_code == 400
    assert capsys.readouterr().out.splitlines() == ["generation.step 3 30"]
