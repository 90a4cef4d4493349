"""`api.temporal.TemporalConnector` during an outage: one connect in flight for every caller,
a failure answered at once for a short while, and no caller waiting long for the next try."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from temporalio.client import Client

import temporal_connect
from api import temporal
from api.problems import TEMPORAL_UNAVAILABLE, DependencyUnavailable
from tests.factories import make_settings


class FakeConnect:
    """Stands in for `temporal_connect.connect`: counts calls, fails (or hangs) as told."""

    def __init__(self) -> None:
        self.calls = 0
        self.hang = False
        self.client: Client | None = None

    async def __call__(self, *_: Any, **__: Any) -> Client:
        self.calls += 1
        await asyncio.sleep(0.05)
        if self.hang:
            await asyncio.sleep(3600)
        if self.client is None:
            raise RuntimeError("Failed client connect: connection refused")
        return self.client


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> FakeConnect:
    fake = FakeConnect()
    monkeypatch.setattr(temporal_connect, "connect", fake)
    return fake


def _connector() -> temporal.TemporalConnector:
    return temporal.TemporalConnector(make_settings().temporal)


async def _answers(connector: temporal.TemporalConnector, n: int) -> list[BaseException | Client]:
    return await asyncio.gather(*(connector.client() for _ in range(n)), return_exceptions=True)


async def test_concurrent_callers_share_one_failed_connect(connect: FakeConnect) -> None:
    """20 callers during an outage make one connect and all answer 503 temporal-unavailable."""
    answers = await _answers(_connector(), 20)
    assert connect.calls == 1
    assert all(isinstance(a, DependencyUnavailable) for a in answers)
    assert {cast(DependencyUnavailable, a).detail for a in answers} == {TEMPORAL_UNAVAILABLE}


async def test_a_failure_is_answered_at_once_then_retried(
    connect: FakeConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within FAILURE_CACHE_SECONDS of a failed connect no new connect is made; after it, one
    is, and a Temporal that answers again is connected."""
    monkeypatch.setattr(temporal, "FAILURE_CACHE_SECONDS", 0.3)
    connector = _connector()
    await _answers(connector, 1)
    started = time.monotonic()
    cached = await _answers(connector, 10)
    assert time.monotonic() - started < 0.05
    assert connect.calls == 1
    assert all(isinstance(a, DependencyUnavailable) for a in cached)
    await asyncio.sleep(0.3)
    connect.client = cast(Client, object())
    assert await connector.client() is connect.client
    assert await connector.client() is connect.client
    assert connect.calls == 2


async def test_during_an_outage_no_caller_waits_for_a_hanging_connect(
    connect: FakeConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a connect has failed, a connect that hangs (an address that drops packets) is
    waited for at most OUTAGE_WAIT_SECONDS; the callers meanwhile share it."""
    monkeypatch.setattr(temporal, "FAILURE_CACHE_SECONDS", 0.0)
    monkeypatch.setattr(temporal, "CONNECT_TIMEOUT_SECONDS", 1.0)
    connector = _connector()
    await _answers(connector, 1)
    connect.hang = True
    started = time.monotonic()
    answers = await _answers(connector, 20)
    assert time.monotonic() - started < temporal.OUTAGE_WAIT_SECONDS + 0.3
    assert all(isinstance(a, DependencyUnavailable) for a in answers)
    assert connect.calls == 2
