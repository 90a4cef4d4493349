"""Per-user signing secrets and signatures a Standard Webhooks receiver verifies."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks.signing import signed_headers, user_secret

MASTER = "master-secret-for-tests-0123456789"
ALICE = "0b6f3c2e-8d1a-4e5b-a7c9-2d4e6f8a0b1c"
BOB = "5f0c9a8e-1b7d-4c39-9a53-6f1f3d2b8e41"


def test_secrets_are_per_user_and_stable() -> None:
    """Each user has a stable `whsec_` secret of 32 bytes; users and masters differ."""
    secret = user_secret(MASTER, ALICE)
    assert secret == user_secret(MASTER, ALICE)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != user_secret(MASTER, BOB)
    assert secret != user_secret(MASTER + "x", ALICE)


def test_a_receiver_verifies_the_signature() -> None:
    """standardwebhooks verifies the headers with the user's secret, and refuses another's."""
    body = '{"type":"generation.progress","seq":3}'
    headers = signed_headers(user_secret(MASTER, ALICE), "msg_1", body, datetime.now(UTC))
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(user_secret(MASTER, ALICE)).verify(body, headers) == {
        "type": "generation.progress",
        "seq": 3,
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(user_secret(MASTER, BOB)).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(user_secret(MASTER, ALICE)).verify(body.replace("3", "4"), headers)
