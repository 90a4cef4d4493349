"""The caller's tier from server-side sources only: the JWT's `app_metadata.tier`, else
`user_profiles.tier`, else FREE. Never `user_metadata`: users can write it themselves."""

from __future__ import annotations

import structlog

from api.auth import Principal
from db.repository import CourseRepository
from tiers import Tier, parse_tier

log = structlog.get_logger("api.tiers")


class TierResolver:
    def __init__(self, courses: CourseRepository) -> None:
        self._courses = courses

    async def tier(self, principal: Principal) -> Tier:
        """The tier, reading `user_profiles` only when the token claims none."""
        stored = None
        if principal.claimed_tier is None:
            stored = await self._courses.get_user_tier(principal.user_id)
        return self.resolve(principal, stored)

    def resolve(self, principal: Principal, stored: str | None) -> Tier:
        """The tier from the token's claim, else from `stored` (`user_profiles.tier` as read
        alongside something else), else FREE."""
        raw = principal.claimed_tier if principal.claimed_tier is not None else stored
        tier, known = parse_tier(raw)
        if not known:
            log.warning("unknown tier; using FREE", tier=raw, user_id=principal.user_id)
        return tier
