"""Subscription tiers: the one place that turns a tier string into a `Tier`.

Pure and side-effect free, so workflows, activities and the API all import it.
"""

from __future__ import annotations

import enum


class Tier(enum.StrEnum):
    FREE = "FREE"
    BASIC = "BASIC"
    STANDARD = "STANDARD"
    TRIAL = "TRIAL"
    PREMIUM = "PREMIUM"


def parse_tier(raw: object) -> tuple[Tier, bool]:
    """Return the tier named by `raw` (any case) and whether it was known; unknown → FREE."""
    if isinstance(raw, str):
        try:
            return Tier(raw.strip().upper()), True
        except ValueError:
            pass
    return Tier.FREE, raw is None
