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
        raw = principal.claimed_tier
        if raw is None:
            raw = await self._courses.get_user_tier(principal.user_id)
        tier, known = parse_tier(raw)
        if not known:
            log.warning("unknown tier; using FREE", tier=raw, user_id=principal.user_id)
        return tier
