"""Admission: each tier's concurrent-run limit, fair-share weight and priority, and the global
cap."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from settings.base import Group
from tiers import Tier


@dataclass(frozen=True)
class TierPolicy:
    tier: Tier
    limit: int
    weight: float
    priority_key: int


class AdmissionSettings(Group):
    limit_free: int = Field(default=1, ge=0, validation_alias="TIER_LIMIT_FREE")
    limit_basic: int = Field(default=2, ge=0, validation_alias="TIER_LIMIT_BASIC")
    limit_standard: int = Field(default=3, ge=0, validation_alias="TIER_LIMIT_STANDARD")
    limit_trial: int = Field(default=5, ge=0, validation_alias="TIER_LIMIT_TRIAL")
    limit_premium: int = Field(default=5, ge=0, validation_alias="TIER_LIMIT_PREMIUM")
    weight_free: float = Field(default=1, gt=0, validation_alias="TIER_WEIGHT_FREE")
    weight_basic: float = Field(default=3, gt=0, validation_alias="TIER_WEIGHT_BASIC")
    weight_standard: float = Field(default=5, gt=0, validation_alias="TIER_WEIGHT_STANDARD")
    weight_trial: float = Field(default=5, gt=0, validation_alias="TIER_WEIGHT_TRIAL")
    weight_premium: float = Field(default=10, gt=0, validation_alias="TIER_WEIGHT_PREMIUM")
    priority_free: int = Field(default=4, ge=1, le=5, validation_alias="TIER_PRIORITY_FREE")
    priority_basic: int = Field(default=3, ge=1, le=5, validation_alias="TIER_PRIORITY_BASIC")
    priority_standard: int = Field(default=2, ge=1, le=5, validation_alias="TIER_PRIORITY_STANDARD")
    priority_trial: int = Field(default=2, ge=1, le=5, validation_alias="TIER_PRIORITY_TRIAL")
    priority_premium: int = Field(default=1, ge=1, le=5, validation_alias="TIER_PRIORITY_PREMIUM")
    global_cap: int = Field(default=10_000, ge=1, validation_alias="ADMISSION_GLOBAL_CAP")
    retry_after_seconds: int = Field(
        default=30, ge=1, validation_alias="ADMISSION_RETRY_AFTER_SECONDS"
    )

    def policy(self, tier: Tier) -> TierPolicy:
        name = tier.value.lower()
        return TierPolicy(
            tier=tier,
            limit=getattr(self, f"limit_{name}"),
            weight=getattr(self, f"weight_{name}"),
            priority_key=getattr(self, f"priority_{name}"),
        )
