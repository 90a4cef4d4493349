"""A reconcile pass reads courses and leases in bounded pages: keyset pages of active courses
(each starting after the last id of the one before), ZSCAN pages of leases until cursor 0,
one visibility query per page, and never a read of everything at once."""

from __future__ import annotations

from typing import Any, cast

from admission import GlobalHolder, RunRef
from db.reconcile import ActiveCourse
from reconciler.core import Policy, Reconciler, Stores
from workflows.types import workflow_id_for

COURSES = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(23)]
LEASES = [GlobalHolder("u", workflow_id_for(c), 1e12, 0.0, f"run-{c}") for c in COURSES]


class FakeCourses:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def active_page(self, after: str, limit: int) -> list[ActiveCourse]:
        self.calls.append((after, limit))
        rows = [c for c in COURSES if c > after][:limit]
        return [ActiveCourse(c, "u", "analyzing_task", f"run-{c}", 1.0) for c in rows]


class FakeLeases:
    def __init__(self) -> None:
        self.pages: list[int] = []
        self.lookups: list[int] = []

    async def holders_page(self, cursor: str, count: int) -> tuple[str, list[GlobalHolder]]:
        start = int(cursor)
        page = LEASES[start : start + count]
        self.pages.append(len(page))
        following = start + count
        return ("0" if following >= len(LEASES) else str(following)), page

    async def leases_of(self, holders: list[str]) -> dict[str, RunRef]:
        self.lookups.append(len(holders))
        return {h: RunRef(f"run-{h.removeprefix('course-generation-')}") for h in holders}

    async def begin_rebuild(self) -> str:
        return "token"

    async def finish_rebuild(self, token: str) -> bool:
        return token == "token"


class FakeRuns:
    def __init__(self) -> None:
        self.queries: list[int] = []

    async def open_among(self, workflow_ids: list[str]) -> dict[str, str]:
        self.queries.append(len(workflow_ids))
        return {wid: f"run-{wid.removeprefix('course-generation-')}" for wid in workflow_ids}

    async def describe(self, workflow_id: str, run_id: str | None) -> Any:
        raise AssertionError("every run is listed open: nothing to describe")


async def test_a_pass_reads_everything_in_pages_of_the_configured_size() -> None:
    courses, leases, runs = FakeCourses(), FakeLeases(), FakeRuns()
    stores = Stores(
        courses=cast(Any, None),
        reconcile=cast(Any, courses),
        leases=cast(Any, leases),
        runs=cast(Any, runs),
        progress=cast(Any, None),
    )
    policy = Policy(grace_seconds=60, stuck_after_seconds=900, default_ttl_seconds=3600)
    summary = await Reconciler(stores, Policy(**{**policy.__dict__, "page_size": 10})).run_pass()
    assert summary.repairs == []
    assert (summary.courses, summary.leases, summary.epoch_written) == (23, 23, True)
    assert courses.calls == [("", 10), (COURSES[9], 10), (COURSES[19], 10)]
    assert leases.pages == [10, 10, 3]
    assert leases.lookups == [10, 10, 3]
    assert runs.queries == [10, 10, 3, 10, 10, 3]
