"""Hypothesis state machine: random reserve/release/clock runs on the real Redis match a model.

Redis is driven through the production `Leases` class (async) from Hypothesis's synchronous
state machine. Rather than a second, synchronous copy of `Leases` (which would test other
code), the coroutines run on a dedicated event loop in a background thread: that works whether
or not pytest-asyncio has a loop running in the test thread, and the client stays bound to one
loop for the whole test. Expiry is deterministic because a model clock is passed as `now`.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from admission import Leases, create_redis
from tests.factories import make_settings, write_epoch
from tiers import Tier

T = TypeVar("T")
T0 = 1_000_000.0
TTL = 20.0
GLOBAL_CAP = 6
POLICY = make_settings().admission
USERS = {"u-free": Tier.FREE, "u-basic": Tier.BASIC, "u-std": Tier.STANDARD, "u-prem": Tier.PREMIUM}
LIMITS = {user: POLICY.policy(tier).limit for user, tier in USERS.items()}


class LoopThread:
    """An event loop running in its own thread; `run()` blocks until a coroutine is done."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


@dataclass(frozen=True)
class Lease:
    user: str
    since: float
    expires: float


@dataclass
class Model:
    """The lease rules in plain Python: expired leases drop out; a holder already present is
    admitted again with its expiry refreshed; else `user_limit` when the user holds its limit,
    `global_limit` when all users together hold the cap; else admitted until now + TTL."""

    now: float = T0
    leases: dict[str, Lease] = field(default_factory=dict)

    def live(self, user: str | None = None) -> dict[str, Lease]:
        return {
            holder: lease
            for holder, lease in self.leases.items()
            if lease.expires > self.now and user in (None, lease.user)
        }

    def reserve(self, user: str, holder: str) -> str:
        self.leases = self.live()
        mine = self.live(user)
        if holder in mine:
            self.leases[holder] = replace(mine[holder], expires=self.now + TTL)
            return "admitted"
        if len(mine) >= LIMITS[user]:
            return "user_limit"
        if len(self.leases) >= GLOBAL_CAP:
            return "global_limit"
        self.leases[holder] = Lease(user, self.now, self.now + TTL)
        return "admitted"

    def release(self, user: str, holder: str) -> bool:
        """A release frees the holder from whichever user holds it (the course may have
        changed owner); it reports whether the lease was still live."""
        live = holder in self.live()
        self.leases.pop(holder, None)
        return live


class AdmissionMachine(RuleBasedStateMachine):
    runner: ClassVar[LoopThread]
    client: ClassVar[aioredis.Redis]
    base_prefix: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        prefix = f"{self.base_prefix}:{uuid.uuid4().hex[:12]}"
        self.runner.run(write_epoch(self.client, prefix))
        self.leases = Leases(self.client, prefix)
        self.model = Model()

    @rule(user=st.sampled_from(sorted(USERS)), index=st.integers(0, 5))
    def reserve(self, user: str, index: int) -> None:
        holder = f"course-generation-{user}-{index}"
        result = self.runner.run(
            self.leases.reserve(user, LIMITS[user], GLOBAL_CAP, holder, TTL, now=self.model.now)
        )
        event(f"reserve: {result.decision}")
        assert result.decision == self.model.reserve(user, holder)
        assert (result.user_count, result.global_count) == (
            len(self.model.live(user)),
            len(self.model.live()),
        )
        assert _by_holder(result.holders) == _expected(self.model.live(user))

    @rule(
        owner=st.sampled_from(sorted(USERS)),
        user=st.sampled_from(sorted(USERS)),
        index=st.integers(0, 5),
    )
    def release(self, owner: str, user: str, index: int) -> None:
        holder = f"course-generation-{owner}-{index}"
        released = self.runner.run(self.leases.release(user, holder, now=self.model.now))
        assert released == self.model.release(user, holder)

    @rule(seconds=st.sampled_from([1.0, 5.0, 10.0, 19.0, 20.0, 21.0, 45.0]))
    def advance_clock(self, seconds: float) -> None:
        self.model.now += seconds

    @invariant()
    def redis_matches_model_within_limits(self) -> None:
        now = self.model.now
        for user in USERS:
            usage = self.runner.run(self.leases.usage(user, now=now))
            assert len(usage) <= LIMITS[user]
            assert _by_holder(usage) == _expected(self.model.live(user))
        listed = self.runner.run(self.leases.holders(now=now))
        assert len(listed) <= GLOBAL_CAP
        assert {g.holder: g.user_id for g in listed} == {
            holder: lease.user for holder, lease in self.model.live().items()
        }

    def teardown(self) -> None:
        self.runner.run(_delete(self.client, self.leases))


def _by_holder(holders: Any) -> dict[str, tuple[float, float]]:
    return {h.holder: (h.since, h.expires_at) for h in holders}


def _expected(leases: dict[str, Lease]) -> dict[str, tuple[float, float]]:
    return {holder: (lease.since, lease.expires) for holder, lease in leases.items()}


async def _delete(client: aioredis.Redis, leases: Leases) -> None:
    keys = [key async for key in client.scan_iter(match=leases.keys.pattern())]
    if keys:
        await client.delete(*keys)


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.close()


def test_leases_match_the_model_and_hold_the_limits(
    loop_thread: LoopThread, redis_url: str, key_prefix: str
) -> None:
    """Random interleavings keep holders per user ≤ the tier limit, global ≤ cap, as modelled."""
    client = loop_thread.run(_client(redis_url))
    AdmissionMachine.runner = loop_thread
    AdmissionMachine.client = client
    AdmissionMachine.base_prefix = key_prefix
    try:
        run_state_machine_as_test(
            AdmissionMachine,
            settings=settings(
                max_examples=100,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        loop_thread.run(client.aclose())


async def _client(url: str) -> aioredis.Redis:
    return create_redis(url)
