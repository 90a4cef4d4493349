"""`python -m bench` stops a benchmark on SIGTERM the way Ctrl-C does: the benchmark is
cancelled and its clean-up (servers, child processes) runs before the process exits."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from bench.__main__ import cancellable


async def test_sigterm_cancels_the_benchmark_and_runs_its_clean_up() -> None:
    cleaned: list[str] = []

    async def benchmark() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.append("stopped its processes")

    asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), signal.SIGTERM)
    assert await cancellable(benchmark) is False
    assert cleaned == ["stopped its processes"]


async def test_a_benchmark_that_ends_reports_so_and_leaves_sigterm_as_it_was() -> None:
    async def benchmark() -> None:
        await asyncio.sleep(0)

    assert await cancellable(benchmark) is True
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


async def test_a_benchmark_that_fails_raises_its_error() -> None:
    async def benchmark() -> None:
        raise RuntimeError("the dev server did not start")

    with pytest.raises(RuntimeError, match="the dev server did not start"):
        await cancellable(benchmark)
