"""The lease store: per-user and global sorted sets of admission leases in Redis.

See the package docstring for the model; any Redis failure raises `LeaseStoreUnavailable`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, get_args

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

ReserveDecision = Literal["admitted", "user_limit", "global_limit"]
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
    """Key names: `<prefix>:{adm}:user:<id>`, `…:global`, `…:since`, `…:owner`."""

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
        now: float | None = None,
    ) -> ReserveResult:
        k = self.keys
        args = [user_id, limit, global_cap, holder, ttl_seconds, _clock(now)]
        reply = await self._run("reserve", [k.user(user_id), k.all, k.since, k.owner], args)
        decision, user_count, global_count, *rest = reply
        return ReserveResult(
            _DECISIONS[_text(decision)], _holders(rest), int(user_count), int(global_count)
        )

    async def release(self, user_id: str, holder: str, now: float | None = None) -> bool:
        k = self.keys
        keys = [k.user(user_id), k.all, k.since, k.owner]
        return int(await self._run("release", keys, [user_id, holder, _clock(now)])) == 1

    async def usage(self, user_id: str, now: float | None = None) -> list[Holder]:
        reply = await self._run("usage", [self.keys.user(user_id), self.keys.since], [_clock(now)])
        return _holders(reply)

    async def holders(self, now: float | None = None) -> list[GlobalHolder]:
        k = self.keys
        reply = await self._run("holders", [k.all, k.since, k.owner], [_clock(now)])
        fields = [_text(value) for value in reply]
        return [
            GlobalHolder(user, holder, float(expires), float(since))
            for user, holder, since, expires in zip(*[iter(fields)] * 4, strict=True)
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
