"""Fault-suite fixtures: one breakable stack for the session, a scenario (with its lease
sampler running) per test, and the per-fault report at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from admission import LeaseKeys
from tests.faults.harness import REPORT, Scenario
from tests.faults.invariants import LeaseSampler
from tests.faults.stack import KEY_PREFIX, FaultStack, open_stack


@pytest_asyncio.fixture(scope="session")
async def fault_stack() -> AsyncIterator[FaultStack]:
    async with open_stack() as stack:
        yield stack


@pytest_asyncio.fixture
async def scenario(
    fault_stack: FaultStack, request: pytest.FixtureRequest
) -> AsyncIterator[Scenario]:
    """The test's scenario; the sampler reads lease sets from before the first start until
    the test ends; afterwards whatever a failed test left down is started again."""
    assert fault_stack.redis_client is not None
    sampler = LeaseSampler(fault_stack.redis_client, LeaseKeys(KEY_PREFIX))
    sampler.start()
    name = request.node.name.removeprefix("test_")
    try:
        yield Scenario(fault_stack, name, sampler)
    finally:
        await sampler.stop()
        await fault_stack.restore()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("fault suite: time to converge and repairs")
        for line in REPORT:
            terminalreporter.line(line)
