"""`python -m admission list|release` in a subprocess against the real Redis."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import redis.asyncio as aioredis

import embedded
from admission import Leases
from workflows.types import workflow_id_for

ROOT = Path(__file__).resolve().parents[3]
TTL = 3600


async def cli(redis_url: str, prefix: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "admission",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_list_shows_each_live_lease(leases: Leases, redis_url: str, prefix: str) -> None:
    """`list` prints one line per live lease with its user, course and workflow id."""
    await leases.reserve("u1", 2, 10, workflow_id_for("c1"), TTL)
    await leases.reserve("u2", 2, 10, workflow_id_for("c2"), TTL)
    code, out, _ = await cli(redis_url, prefix, "list")
    assert code == 0
    epoch, _header, *lines = out.splitlines()
    assert epoch.startswith("# epoch: 20"), epoch
    rows = sorted(line.split("\t")[:3] for line in lines)
    assert rows == [["u1", "c1", "course-generation-c1"], ["u2", "c2", "course-generation-c2"]]


async def test_list_says_when_the_epoch_is_missing(
    leases: Leases, redis_client: aioredis.Redis, redis_url: str, prefix: str
) -> None:
    """Without the epoch, `list` says so on its first line (and still lists the leases)."""
    await redis_client.delete(leases.keys.epoch)
    code, out, _ = await cli(redis_url, prefix, "list")
    assert code == 0
    assert out.splitlines()[0].startswith("# epoch: missing"), out


async def test_release_frees_the_course_lease(leases: Leases, redis_url: str, prefix: str) -> None:
    """`release <courseId>` finds the holder's user and frees only that lease."""
    await leases.reserve("u1", 2, 10, workflow_id_for("c1"), TTL)
    await leases.reserve("u1", 2, 10, workflow_id_for("c2"), TTL)
    code, out, _ = await cli(redis_url, prefix, "release", "c1")
    assert (code, out.strip()) == (0, "released course-generation-c1 (user u1)")
    assert [h.holder for h in await leases.usage("u1")] == ["course-generation-c2"]


async def test_release_of_a_course_without_lease_exits_1(
    leases: Leases, redis_url: str, prefix: str
) -> None:
    """`release` of a course that holds no lease says so and exits 1."""
    code, _, err = await cli(redis_url, prefix, "release", "c404")
    assert (code, err.strip()) == (1, "no lease held by course-generation-c404")


async def test_unreachable_redis_exits_3(prefix: str) -> None:
    """With Redis unreachable the command prints one line and exits 3."""
    code, _, err = await cli(f"redis://127.0.0.1:{embedded.free_port()}/0", prefix, "list")
    assert code == 3
    assert err.startswith("redis unavailable: ")
