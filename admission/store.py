"""The lease store: per-user and global sorted sets of admission leases in Redis.

See the package docstring for the model; any Redis failure raises `LeaseStoreUnavailable`,
a store without its epoch (its state lost, or never built) `LeaseEpochMissing` on `reserve`
and `usage`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal, get_args

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from workflows.types import HolderInfo, course_id_of

ReserveDecision = Literal["admitted", "user_limit", "global_limit", "stale"]
SCRIPT_NAMES = ("reserve", "release", "usage", "holders", "scan", "restore", "epoch")
HASH_TAG = "{adm}"
_DECISIONS: dict[str, ReserveDecision] = {d: d for d in get_args(ReserveDecision)}


def _read_script(name: str) -> str:
    return (resources.files("admission") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


SCRIPTS = {name: _read_script("common") + _read_script(name) for name in SCRIPT_NAMES}


class LeaseStoreUnavailable(Exception):
    """Redis refused, timed out or failed: callers answer "try again later" (503, retry)."""


class LeaseEpochMissing(LeaseStoreUnavailable):
    """The store has no epoch: Redis lost its leases (or this prefix was never built), so no
    admission may be decided on it until a rebuild from Temporal writes the epoch again."""


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
    def epoch(self) -> str:
        """Written by a full rebuild; while it is missing the store admits no one."""
        return f"{self.prefix}:{HASH_TAG}:epoch"

    @property
    def rebuild(self) -> str:
        """The token of the rebuild under way; the epoch is written only while it is intact."""
        return f"{self.prefix}:{HASH_TAG}:rebuild"

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
    """The lease scripts, one method each; `now` (epoch seconds) overrides Redis TIME."""

    def __init__(self, redis: aioredis.Redis, prefix: str, deadline_seconds: float = 1.5) -> None:
        self.keys = LeaseKeys(prefix)
        self._redis = redis
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
        reply = await self._run("reserve", [k.user(user_id), *k.shared, k.epoch], args)
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
        k = self.keys
        reply = await self._run("usage", [k.user(user_id), k.since, k.epoch], [_clock(now)])
        return _holders(reply)

    async def holders(self, now: float | None = None) -> list[GlobalHolder]:
        """Every live lease at once: for the operator's list; the reconciler pages instead."""
        return _global_holders(await self._run("holders", self.keys.shared, [_clock(now)]))

    async def holders_page(
        self, cursor: str = "0", count: int = 500, now: float | None = None
    ) -> tuple[str, list[GlobalHolder]]:
        """One ZSCAN page of live leases (about `count`) and the next cursor ("0": done)."""
        reply = await self._run("scan", self.keys.shared, [cursor, count, _clock(now)])
        return _text(reply[0]), _global_holders(reply[1:])

    async def scan_holders(self, count: int = 500) -> AsyncIterator[list[GlobalHolder]]:
        """Every live lease, a page at a time (a lease may appear twice; callers are idempotent)."""
        cursor = "0"
        while True:
            cursor, page = await self.holders_page(cursor, count)
            if page:
                yield page
            if cursor == "0":
                return

    async def leases_of(self, holders: list[str]) -> dict[str, RunRef]:
        """The run holding each of `holders` that has a lease (expired ones included)."""
        if not holders:
            return {}
        k = self.keys
        try:
            async with asyncio.timeout(self._deadline):
                pipe = self._redis.pipeline(transaction=False)
                pipe.zmscore(k.all, holders)
                pipe.hmget(k.run, holders)
                scores, runs = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise _unavailable("leases_of", exc) from exc
        return {
            holder: _run_ref(run)
            for holder, score, run in zip(holders, scores, runs, strict=True)
            if score is not None
        }

    async def restore(
        self, user_id: str, holder: str, run: RunRef, expires_at: float, since: float
    ) -> bool:
        """Put back the lease of an open run; False when `holder` already has one."""
        k = self.keys
        args = [user_id, holder, run.run_id, f"{run.started_at:.6f}", f"{expires_at:.6f}"]
        reply = await self._run("restore", [k.user(user_id), *k.shared], [*args, f"{since:.6f}"])
        return int(reply) == 1

    async def begin_rebuild(self) -> str:
        """Mark a rebuild as begun; its token lets `finish_rebuild` tell whether Redis kept
        everything written since (a restart in between loses the marker)."""
        token = uuid.uuid4().hex
        try:
            async with asyncio.timeout(self._deadline):
                await self._redis.set(self.keys.rebuild, token)
        except (RedisError, OSError, TimeoutError) as exc:
            raise _unavailable("begin_rebuild", exc) from exc
        return token

    async def finish_rebuild(self, token: str, now: float | None = None) -> bool:
        """Write the epoch if the rebuild `token` is still the one under way; True if written."""
        reply = await self._run("epoch", [self.keys.rebuild, self.keys.epoch], [token, _clock(now)])
        return int(reply) == 1

    async def epoch(self) -> float | None:
        """When the last full rebuild wrote the epoch (epoch seconds), or None: no epoch."""
        try:
            async with asyncio.timeout(self._deadline):
                value = await self._redis.get(self.keys.epoch)
        except (RedisError, OSError, TimeoutError) as exc:
            raise _unavailable("epoch", exc) from exc
        return None if value is None else float(_text(value))

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script: AsyncScript = self._scripts[name]
        try:
            async with asyncio.timeout(self._deadline):
                return await script(keys=keys, args=args)
        except ResponseError as exc:
            if str(exc).startswith("EPOCHLESS"):
                raise LeaseEpochMissing(
                    f"lease store has no epoch ({name}): rebuild pending"
                ) from exc
            raise _unavailable(name, exc) from exc
        except (RedisError, OSError, TimeoutError) as exc:
            raise _unavailable(name, exc) from exc


def _unavailable(name: str, exc: BaseException) -> LeaseStoreUnavailable:
    return LeaseStoreUnavailable(f"lease store unavailable ({name}): {type(exc).__name__}: {exc}")


def _run_ref(value: object) -> RunRef:
    """A `run` hash value `<start time>:<run id>` (None: a lease without one)."""
    if value is None:
        return RunRef()
    started, _, run_id = _text(value).partition(":")
    return RunRef(run_id, float(started or 0))


def _global_holders(flat: list[Any]) -> list[GlobalHolder]:
    fields = [_text(value) for value in flat]
    return [
        GlobalHolder(user, holder, float(expires), float(since), run_id)
        for user, holder, since, expires, run_id in zip(*[iter(fields)] * 5, strict=True)
    ]


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
