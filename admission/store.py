"""The lease store: per-user and global sorted sets of admission leases in Redis.

See the package docstring for the model; any Redis failure raises `LeaseStoreUnavailable`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal, get_args

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from workflows.types import HolderInfo, course_id_of

ReserveDecision = Literal["admitted", "user_limit", "global_limit", "stale"]
SCRIPT_NAMES = ("reserve", "release", "usage", "holders")
HASH_TAG = "{adm}"
_DECISIONS: dict[str, ReserveDecision] = {d: d for d in get_args(ReserveDecision)}


def _read_script(name: str) -> str:
    return (resources.files("admission") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


SCRIPTS = {name: _read_script("common") + _read_script(name) for name in SCRIPT_NAMES}


class LeaseStoreUnavailable(Exception):
    """Redis refused, timed out or failed: callers answer "try again later" (503, retry)."""


@dataclass(frozen=True)
class Holder:
    holder: str
    since: float
    expires_at: float


@dataclass(frozen=True)
class GlobalHolder:
    user_id: str
    holder: str
    expires_at: float
    since: float
    run_id: str = ""


@dataclass(frozen=True)
class RunRef:
    """The run a lease belongs to: its id and start time (epoch seconds)."""

    run_id: str = ""
    started_at: float = 0.0


@dataclass(frozen=True)
class ReserveResult:
    decision: ReserveDecision
    holders: list[Holder]
    user_count: int
    global_count: int

    @property
    def admitted(self) -> bool:
        return self.decision == "admitted"


@dataclass(frozen=True)
class LeaseKeys:
    """Key names: `<prefix>:{adm}:user:<id>`, `…:global`, `…:since`, `…:owner`, `…:run`."""

    prefix: str

    def __post_init__(self) -> None:
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"key prefix {self.prefix!r} must not contain a hash tag")

    def user(self, user_id: str) -> str:
        return f"{self.prefix}:{HASH_TAG}:user:{user_id}"

    @property
    def all(self) -> str:
        return f"{self.prefix}:{HASH_TAG}:global"

    @property
    def since(self) -> str:
        return f"{self.prefix}:{HASH_TAG}:since"

    @property
    def owner(self) -> str:
        return f"{self.prefix}:{HASH_TAG}:owner"

    @property
    def run(self) -> str:
        return f"{self.prefix}:{HASH_TAG}:run"

    @property
    def shared(self) -> list[str]:
        """The keys every user shares: the global set and the three hashes."""
        return [self.all, self.since, self.owner, self.run]

    def pattern(self) -> str:
        return f"{self.prefix}:{HASH_TAG}:*"


def create_redis(url: str, timeout: float = 1.0) -> aioredis.Redis:
    """A client with ~1 s connect and socket timeouts and one immediate retry.

    The retry is for a pooled connection that a Redis restart left dead: without it the first
    call after the restart fails although Redis is back. An outage still surfaces within the
    caller's deadline.
    """
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        decode_responses=True,
    )


class Leases:
    """The four lease scripts, one method each; `now` (epoch seconds) overrides Redis TIME."""

    def __init__(self, redis: aioredis.Redis, prefix: str, deadline_seconds: float = 1.5) -> None:
        self.keys = LeaseKeys(prefix)
        self._deadline = deadline_seconds
        self._scripts = {name: redis.register_script(text) for name, text in SCRIPTS.items()}

    async def reserve(
        self,
        user_id: str,
        limit: int,
        global_cap: int,
        holder: str,
        ttl_seconds: float,
        run: RunRef | None = None,
        now: float | None = None,
    ) -> ReserveResult:
        """Admit `holder` for `run`; `stale` when the recorded run started after `run`."""
        k, run = self.keys, run or RunRef()
        args = [user_id, limit, global_cap, holder, run.run_id, f"{run.started_at:.6f}"]
        args += [ttl_seconds, _clock(now), k.user("")]
        reply = await self._run("reserve", [k.user(user_id), *k.shared], args)
        decision, user_count, global_count, *rest = reply
        return ReserveResult(
            _DECISIONS[_text(decision)], _holders(rest), int(user_count), int(global_count)
        )

    async def release(
        self, user_id: str, holder: str, run_id: str = "", now: float | None = None
    ) -> bool:
        """Free `holder` while it belongs to `run_id` (empty: whichever run holds it)."""
        k = self.keys
        args = [holder, run_id, _clock(now), k.user("")]
        return int(await self._run("release", [k.user(user_id), *k.shared], args)) == 1

    async def usage(self, user_id: str, now: float | None = None) -> list[Holder]:
        reply = await self._run("usage", [self.keys.user(user_id), self.keys.since], [_clock(now)])
        return _holders(reply)

    async def holders(self, now: float | None = None) -> list[GlobalHolder]:
        k = self.keys
        reply = await self._run("holders", k.shared, [_clock(now)])
        fields = [_text(value) for value in reply]
        return [
            GlobalHolder(user, holder, float(expires), float(since), run_id)
            for user, holder, since, expires, run_id in zip(*[iter(fields)] * 5, strict=True)
        ]

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script: AsyncScript = self._scripts[name]
        try:
            async with asyncio.timeout(self._deadline):
                return await script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise LeaseStoreUnavailable(f"lease store unavailable ({name}): {detail}") from exc


def _clock(now: float | None) -> str:
    return "" if now is None else f"{now:.6f}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _holders(flat: list[Any]) -> list[Holder]:
    fields = [_text(value) for value in flat]
    return [
        Holder(holder, float(since), float(expires))
        for holder, since, expires in zip(*[iter(fields)] * 3, strict=True)
    ]


def holder_info(holder: Holder) -> HolderInfo:
    """A lease as the workflow and the API report it (`since` as ISO-8601 UTC)."""
    since = datetime.fromtimestamp(holder.since, UTC).isoformat()
    return HolderInfo(course_id=course_id_of(holder.holder), workflow_id=holder.holder, since=since)
