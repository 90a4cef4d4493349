"""Small readings and actions the fault tests share: where runs are, the `temporal` CLI, and
timed HTTP calls during an outage."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import httpx

from tests.faults.stores import temporal_cli
from tests.faults.workload import Planned
from tests.helpers import eventually

STAGES = ("analyzing_task", "generating_structure", "generating_content", "finalizing")


async def statuses(pool: asyncpg.Pool, planned: Sequence[Planned]) -> dict[str, str | None]:
    rows = await pool.fetch(
        "SELECT id::text, generation_status::text AS s FROM public.courses"
        " WHERE id = ANY($1::uuid[])",
        [uuid.UUID(p.course_id) for p in planned],
    )
    return {r["id"]: r["s"] for r in rows}


async def wait_in_stage(
    pool: asyncpg.Pool, planned: Sequence[Planned], at_least: int, timeout: float = 30
) -> None:
    """Until `at_least` of the courses are inside a stage (steps 2-5)."""

    async def inside() -> None:
        found = await statuses(pool, planned)
        count = sum(1 for s in found.values() if s in STAGES)
        assert count >= at_least, f"{count} of {len(planned)} in a stage: {found}"

    await eventually(inside, timeout=timeout, interval=0.1)


def terminate(address: str, workflow_id: str) -> None:
    """`temporal workflow terminate`, as an operator would type it."""
    subprocess.run(
        [str(temporal_cli()), "workflow", "terminate", "--address", address,
         "--workflow-id", workflow_id, "--reason", "fault suite: terminate"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip


@dataclass(frozen=True)
class Answer:
    what: str
    status: int | None  # None: no answer within the client's timeout (a hang)
    retry_after: str | None
    seconds: float


async def timed(http: httpx.AsyncClient, what: str, method: str, planned: Planned) -> Answer:
    """One call with a hang detector: the client gives up after 10 s."""
    began = time.monotonic()
    try:
        response = await http.request(
            method,
            planned.path,
            headers=planned.headers,
            json={} if method == "POST" else None,
            timeout=10,
        )
    except httpx.TimeoutException:
        return Answer(what, None, None, time.monotonic() - began)
    return Answer(
        what, response.status_code, response.headers.get("Retry-After"), time.monotonic() - began
    )


async def calls_during(
    http: httpx.AsyncClient, seconds: float, starts: Sequence[Planned], reads: Sequence[Planned]
) -> list[Answer]:
    """Starts of new courses and status reads of running ones, one of each every 0.5 s."""
    answers: list[Answer] = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        pair = await asyncio.gather(
            timed(http, "start", "POST", starts[i % len(starts)]),
            timed(http, "status", "GET", reads[i % len(reads)]),
        )
        answers += pair
        i += 1
        await asyncio.sleep(0.5)
    return answers
