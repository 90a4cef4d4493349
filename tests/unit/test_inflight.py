"""`api.inflight.InFlight`: one operation per key in flight, its outcome shared, its run
independent of any one caller."""

from __future__ import annotations

import asyncio

import pytest

from api.inflight import InFlight


class Operation:
    """A controllable operation: counts its starts, ends when `release` is set."""

    def __init__(self) -> None:
        self.starts = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self) -> str:
        self.starts += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return f"outcome {self.starts}"


async def test_concurrent_callers_share_one_operation() -> None:
    """Callers that arrive while the operation runs get its outcome; only the first leads."""
    shared: InFlight[str] = InFlight()
    operation = Operation()
    calls = [asyncio.create_task(shared.run("course", operation)) for _ in range(5)]
    await asyncio.sleep(0)
    operation.release.set()
    outcomes = await asyncio.gather(*calls)
    assert operation.starts == 1
    assert outcomes == [("outcome 1", True)] + [("outcome 1", False)] * 4


async def test_keys_are_independent_and_freed_when_done() -> None:
    """Another key starts its own operation; once an operation ends, the key starts anew."""
    shared: InFlight[str] = InFlight()
    operation = Operation()
    operation.release.set()
    assert await shared.run("a", operation) == ("outcome 1", True)
    assert await shared.run("b", operation) == ("outcome 2", True)
    assert await shared.run("a", operation) == ("outcome 3", True)


async def test_an_error_reaches_every_caller() -> None:
    """A failed operation raises its error to the leader and every follower."""
    shared: InFlight[str] = InFlight()
    operation = Operation()
    operation.error = RuntimeError("refused")
    calls = [asyncio.create_task(shared.run("course", operation)) for _ in range(3)]
    await asyncio.sleep(0)
    operation.release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [str(r) for r in results] == ["refused"] * 3
    assert operation.starts == 1


async def test_a_cancelled_caller_does_not_cancel_the_operation() -> None:
    """The leader's caller going away leaves the operation running for the followers."""
    shared: InFlight[str] = InFlight()
    operation = Operation()
    leader = asyncio.create_task(shared.run("course", operation))
    await asyncio.sleep(0)
    follower = asyncio.create_task(shared.run("course", operation))
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    operation.release.set()
    assert await follower == ("outcome 1", False)
    assert operation.starts == 1
