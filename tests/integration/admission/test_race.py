"""Concurrent reserves against the real Redis never over-admit."""

from __future__ import annotations

import asyncio

from admission import Leases

TTL = 3600


async def test_fifty_holders_racing_for_one_free_slot_admit_exactly_one(leases: Leases) -> None:
    """50 concurrent reserves by one FREE user with 50 different holders admit exactly one."""
    results = await asyncio.gather(
        *(leases.reserve("u1", 1, 10_000, f"h{i}", TTL) for i in range(50))
    )
    admitted = [r for r in results if r.decision == "admitted"]
    assert len(admitted) == 1
    assert {r.decision for r in results} - {"admitted"} == {"user_limit"}
    assert [h.holder for h in await leases.usage("u1")] == [admitted[0].holders[0].holder]
    assert len(await leases.holders()) == 1


async def test_fifty_reserves_of_one_holder_all_admit_one_lease(leases: Leases) -> None:
    """50 concurrent reserves of the same holder all answer admitted and hold one lease."""
    results = await asyncio.gather(*(leases.reserve("u1", 1, 10_000, "h1", TTL) for _ in range(50)))
    assert {r.decision for r in results} == {"admitted"}
    assert {r.user_count for r in results} == {1}
    assert [h.holder for h in await leases.usage("u1")] == ["h1"]
    assert len(await leases.holders()) == 1
