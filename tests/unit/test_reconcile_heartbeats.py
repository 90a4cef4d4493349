"""The reconcile activities heartbeat while a page works, so a short heartbeat timeout tells a
lost page from a slow one."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities.reconcile import heartbeating


@activity.defn(name="slow_page")
async def slow_page(seconds: float) -> str:
    async with heartbeating():
        await asyncio.sleep(seconds)
        return "done"


def environment(heartbeat_timeout: timedelta | None) -> tuple[ActivityEnvironment, list[object]]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=heartbeat_timeout)
    beats: list[object] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


async def test_a_page_longer_than_its_heartbeat_timeout_heartbeats_throughout() -> None:
    """A 0.5 s page under a 0.3 s heartbeat timeout beats every 0.1 s: never 0.3 s without."""
    env, beats = environment(timedelta(seconds=0.3))
    assert await env.run(slow_page, 0.5) == "done"
    assert len(beats) >= 3, beats


async def test_without_a_heartbeat_timeout_nothing_is_sent() -> None:
    env, beats = environment(None)
    assert await env.run(slow_page, 0.2) == "done"
    assert beats == []


async def test_the_heartbeats_stop_when_the_page_fails() -> None:
    """A page that raises leaves no heartbeat task behind."""
    env, beats = environment(timedelta(seconds=0.3))

    @activity.defn(name="failing_page")
    async def failing_page() -> None:
        async with heartbeating():
            await asyncio.sleep(0.15)
            raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        await env.run(failing_page)
    count = len(beats)
    await asyncio.sleep(0.3)
    assert len(beats) == count
