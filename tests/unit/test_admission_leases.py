"""Admission pieces that need no Redis: key layout, scripts on disk, holder conversion."""

from __future__ import annotations

from datetime import datetime

import pytest
from redis.crc import key_slot

from admission import Holder, LeaseKeys, create_redis, holder_info
from admission.store import SCRIPT_NAMES, SCRIPTS


def test_keys_carry_the_prefix_and_one_hash_tag() -> None:
    """Every key is `<prefix>:{adm}:…`, so all admission keys share one Cluster slot."""
    keys = LeaseKeys("cg")
    assert (keys.user("u1"), keys.all, keys.since, keys.owner) == (
        "cg:{adm}:user:u1",
        "cg:{adm}:global",
        "cg:{adm}:since",
        "cg:{adm}:owner",
    )
    assert len({key_slot(k.encode()) for k in (keys.user("a"), keys.user("b"), keys.all)}) == 1


def test_prefix_with_braces_is_refused() -> None:
    """A prefix containing a hash tag would split the keys across slots, so it is refused."""
    with pytest.raises(ValueError, match="hash tag"):
        LeaseKeys("cg{x}")


def test_every_script_is_a_file_loaded_once() -> None:
    """The Lua scripts are read from `admission/lua/` at import, each after the prelude."""
    names = {"reserve", "release", "usage", "holders", "scan", "restore", "epoch"}
    assert set(SCRIPTS) == set(SCRIPT_NAMES) == names
    assert all("redis.call" in text for text in SCRIPTS.values())
    assert all(text.count("local function clock") == 1 for text in SCRIPTS.values())


def test_holder_info_reports_course_and_iso_utc_since() -> None:
    """A lease becomes `HolderInfo` with the course id and `since` as ISO-8601 UTC."""
    info = holder_info(Holder("course-generation-abc", 1_700_000_000.5, 1_700_003_600.5))
    assert (info.course_id, info.workflow_id) == ("abc", "course-generation-abc")
    assert datetime.fromisoformat(info.since) == datetime.fromisoformat(
        "2023-11-14T22:13:20.500000+00:00"
    )


async def test_client_has_short_timeouts_and_one_retry() -> None:
    """`create_redis` sets ~1 s connect and socket timeouts and one immediate retry (for a
    pooled connection a Redis restart left dead), so an outage still surfaces quickly."""
    client = create_redis("redis://127.0.0.1:6379/0")
    kwargs = client.connection_pool.connection_kwargs
    try:
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.0, 1.0)
        assert kwargs["retry"].get_retries() == 1
    finally:
        await client.aclose()
