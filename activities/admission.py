"""Admission activities: reserve and release a run's lease in the lease store.

`reserve_lease` runs as a local activity (schedule-to-close 3 s) on the start path; a Redis
failure raises the retryable `LeaseStoreUnavailable`, so an outage longer than that budget ends
as the workflow's `unavailable` decision. A store without its epoch (Redis lost its leases)
answers None at once (no retry: nothing changes before a rebuild), which the workflow reads as
it reads an unavailable store, so the start answers 503 at once; the activity also asks for a
reconcile pass, whose rebuild writes the epoch back. Both activities are idempotent by
workflow id (the lease holder).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.types import (
    RELEASE_LEASE,
    RESERVE_LEASE,
    ReleaseLeaseInput,
    ReserveLeaseInput,
    ReserveLeaseResult,
)
from admission import (
    LeaseEpochMissing,
    Leases,
    LeaseStoreUnavailable,
    ReserveResult,
    RunRef,
    holder_info,
)
from settings import AdmissionSettings, TierPolicy
from tiers import parse_tier
from workflows import errors
from workflows.types import LimitReason

Trigger = Callable[[], Awaitable[object]]
TRIGGER_TIMEOUT_SECONDS = 1.0


class AdmissionActivities:
    """Lease activities over a `Leases` store; limits come from the tier policy.

    `rebuild` asks for a reconcile pass when the store has lost its epoch (the worker passes
    one that starts it in Temporal; None: nothing is asked)."""

    def __init__(
        self,
        leases: Leases,
        admission_settings: AdmissionSettings,
        lease_ttl_seconds: int,
        rebuild: Trigger | None = None,
    ) -> None:
        self._leases = leases
        self._settings = admission_settings
        self._ttl = lease_ttl_seconds
        self._rebuild = rebuild

    @activity.defn(name=RESERVE_LEASE)
    async def reserve_lease(self, input: ReserveLeaseInput) -> ReserveLeaseResult | None:
        """Reserve the user's lease for this run; its ttl is the run's own execution timeout.
        None: the store has no epoch, so it cannot decide (`unavailable`)."""
        policy = self._policy(input.tier)
        started = _epoch(input.run_started_at)
        try:
            result = await self._leases.reserve(
                input.user_id,
                policy.limit,
                self._settings.global_cap,
                input.workflow_id,
                input.ttl_seconds or self._ttl,
                RunRef(input.run_id, started),
            )
        except LeaseEpochMissing as exc:
            activity.logger.warning("%s: refused, reconcile pass requested", exc)
            await self._ask_for_rebuild()
            return None
        except LeaseStoreUnavailable as exc:
            raise _unavailable(exc) from exc
        if result.decision == "stale":
            raise ApplicationError(
                f"lease of {input.workflow_id} belongs to a newer run than {input.run_id}",
                type=errors.STALE_RUN,
                non_retryable=True,
            )
        return _result(result, policy)

    @activity.defn(name=RELEASE_LEASE)
    async def release_lease(self, input: ReleaseLeaseInput) -> None:
        try:
            await self._leases.release(input.user_id, input.workflow_id, input.run_id)
        except LeaseStoreUnavailable as exc:
            raise _unavailable(exc) from exc

    async def _ask_for_rebuild(self) -> None:
        """Ask for a pass, briefly: the refusal must reach the caller within its 3 s budget."""
        if self._rebuild is None:
            return
        try:
            async with asyncio.timeout(TRIGGER_TIMEOUT_SECONDS):
                await self._rebuild()
        except Exception as exc:  # the next scheduled pass rebuilds anyway
            activity.logger.warning("reconcile pass not triggered: %s", exc)

    def _policy(self, raw_tier: str) -> TierPolicy:
        tier, known = parse_tier(raw_tier)
        if not known:
            activity.logger.warning("unknown tier %r: admitting as %s", raw_tier, tier.value)
        return self._settings.policy(tier)


_REASONS: dict[str, LimitReason] = {"user_limit": "user_limit", "global_limit": "global_limit"}


def _result(result: ReserveResult, policy: TierPolicy) -> ReserveLeaseResult:
    return ReserveLeaseResult(
        decision="admitted" if result.decision == "admitted" else "rejected",
        reason=_REASONS.get(result.decision),
        tier=policy.tier.value,
        limit=policy.limit,
        holders=[] if result.decision == "global_limit" else list(map(holder_info, result.holders)),
    )


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() if iso else 0.0


def _unavailable(exc: LeaseStoreUnavailable) -> ApplicationError:
    return ApplicationError(str(exc), type=errors.LEASE_STORE_UNAVAILABLE, non_retryable=False)
