"""Per-user signing secrets and Standard Webhooks signatures.

Each user's secret is derived from the master secret (`WEBHOOK_SECRET`), so one integrator
cannot forge another's events and no per-user secret is stored: HMAC-SHA256(master, user id),
written `whsec_<base64>` as Standard Webhooks libraries expect it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
_CONTEXT = b"course-generator webhook signing key\x00"


def user_secret(master: str, user_id: str) -> str:
    """The `whsec_…` signing secret of `user_id`."""
    key = hmac.new(master.encode(), _CONTEXT + user_id.encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def signed_headers(secret: str, webhook_id: str, body: str, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent at `at` (an aware datetime)."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
    }
