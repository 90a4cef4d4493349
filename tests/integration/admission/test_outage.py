"""Redis unreachable, hung or restarted: every call ends in the typed error within 2 s."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

import embedded
from admission import Leases, LeaseStoreUnavailable, create_redis
from tests.factories import write_epoch

Call = Callable[[Leases], Awaitable[object]]
CALLS: dict[str, Call] = {
    "reserve": lambda leases: leases.reserve("u1", 1, 10, "h1", 60),
    "release": lambda leases: leases.release("u1", "h1"),
    "usage": lambda leases: leases.usage("u1"),
    "holders": lambda leases: leases.holders(),
}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own (never the shared one), stopped afterwards."""
    port = embedded.free_port()
    proc = embedded.start_redis_server(tmp_path / "redis", port)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        embedded.stop_process(proc)


@pytest_asyncio.fixture
async def silent_server() -> AsyncIterator[str]:
    """A socket that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def assert_unavailable_fast(leases: Leases, call: Call) -> None:
    started = time.monotonic()
    with pytest.raises(LeaseStoreUnavailable):
        await call(leases)
    assert time.monotonic() - started < 2.0


@contextlib.asynccontextmanager
async def leases_at(url: str, prefix: str, *, epoch: bool = False) -> AsyncIterator[Leases]:
    """`Leases` under `prefix` on the Redis at `url`, through production's client; `epoch`:
    written first (the Redis must answer)."""
    client = create_redis(url)
    try:
        if epoch:
            await write_epoch(client, prefix)
        yield Leases(client, prefix)
    finally:
        await client.aclose()


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_unreachable_redis_raises_typed_error(name: str) -> None:
    """With nothing listening, each lease call raises `LeaseStoreUnavailable` within 2 s."""
    async with leases_at(f"redis://127.0.0.1:{embedded.free_port()}/0", "down") as leases:
        await assert_unavailable_fast(leases, CALLS[name])


@pytest.mark.parametrize("name", ["reserve", "release"])
async def test_silent_socket_raises_typed_error(silent_server: str, name: str) -> None:
    """A server that accepts and never answers gives `LeaseStoreUnavailable` within 2 s."""
    async with leases_at(silent_server, "silent") as leases:
        await assert_unavailable_fast(leases, CALLS[name])


async def test_paused_redis_raises_typed_error_and_recovers(
    own_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """A SIGSTOPped Redis gives `LeaseStoreUnavailable` within 2 s; after SIGCONT calls work."""
    url, proc = own_redis
    async with leases_at(url, "paused", epoch=True) as leases:
        assert (await leases.reserve("u1", 1, 10, "h1", 60)).decision == "admitted"
        os.kill(proc.pid, signal.SIGSTOP)
        await assert_unavailable_fast(leases, CALLS["reserve"])
        await assert_unavailable_fast(leases, CALLS["release"])
        os.kill(proc.pid, signal.SIGCONT)
        assert [h.holder for h in await leases.usage("u1")] == ["h1"]


async def test_scripts_are_reloaded_after_noscript(
    own_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """After SCRIPT FLUSH (as after a Redis restart) the next call reloads the script."""
    url, _ = own_redis
    admin = aioredis.Redis.from_url(url)
    try:
        async with leases_at(url, "noscript", epoch=True) as leases:
            await leases.reserve("u1", 1, 10, "h1", 60)
            await admin.script_flush()
            assert (await leases.reserve("u1", 1, 10, "h1", 60)).decision == "admitted"
    finally:
        await admin.aclose()
