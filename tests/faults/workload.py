"""The client side of a fault scenario: users of every tier with courses, started at once
through the gateway's HTTP API as a browser would (a 503 is retried after a short pause)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from tests.factories import bearer, hs_token, insert_course, insert_user

# (tier, users, courses each): every user starts all its courses at once, so the FREE and
# BASIC users with one course more than their limit are at their tier limit.
MIX: tuple[tuple[str, int, int], ...] = (
    ("FREE", 6, 1),
    ("FREE", 2, 2),
    ("BASIC", 3, 2),
    ("BASIC", 1, 3),
    ("STANDARD", 2, 3),
    ("PREMIUM", 1, 5),
)
START_PATIENCE = 60.0


@dataclass(frozen=True)
class Planned:
    user_id: str
    tier: str
    course_id: str

    @property
    def path(self) -> str:
        return f"/api/v1/courses/{self.course_id}/generation"

    @property
    def headers(self) -> dict[str, str]:
        return bearer(hs_token(self.user_id))


@dataclass
class Started:
    plan: Planned
    codes: list[int] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def admitted(self) -> bool:
        return bool(self.codes) and self.codes[-1] in (200, 202)


async def plan(
    pool: asyncpg.Pool,
    mix: Sequence[tuple[str, int, int]] = MIX,
    simulation: Mapping[str, Any] | None = None,
) -> list[Planned]:
    """Users and courses as the frontend leaves them before a generation starts."""
    planned = []
    for tier, users, courses in mix:
        for _ in range(users):
            user_id = await insert_user(pool, tier)
            for _ in range(courses):
                course_id = await insert_course(pool, user_id, simulation=dict(simulation or {}))
                planned.append(Planned(user_id, tier, course_id))
    return planned


async def start_one(http: httpx.AsyncClient, planned: Planned) -> Started:
    """POST a start; on 503 try again (a client honouring Retry-After, shortened) until it is
    answered otherwise or `START_PATIENCE` runs out."""
    started = Started(planned)
    deadline = time.monotonic() + START_PATIENCE
    while True:
        response = await http.post(planned.path, headers=planned.headers, json={})
        started.codes.append(response.status_code)
        started.body = response.json()
        if response.status_code != 503 or time.monotonic() > deadline:
            return started
        await asyncio.sleep(0.5)


async def start_all(http: httpx.AsyncClient, planned: Sequence[Planned]) -> list[Started]:
    """Every start at once; each must end 200/202 (admitted) or 429 (at the limit)."""
    results = await asyncio.gather(*(start_one(http, p) for p in planned))
    unexpected = [(r.plan.course_id, r.codes, r.body) for r in results if r.codes[-1] not in (
        200, 202, 429)]  # fmt: skip
    assert not unexpected, f"starts answered neither admitted nor 429: {unexpected}"
    return list(results)


def admitted(results: Sequence[Started]) -> list[Planned]:
    return [r.plan for r in results if r.admitted]


def summary(results: Sequence[Started]) -> str:
    finals = Counter(r.codes[-1] for r in results)
    return ", ".join(f"{code}x{n}" for code, n in sorted(finals.items()))
