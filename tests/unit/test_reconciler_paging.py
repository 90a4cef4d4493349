"""A reconcile pass reads courses and leases in bounded pages: keyset pages of active courses
(each starting after the last id of the one before), ZSCAN pages of leases until cursor 0,
one visibility query per page of courses, none for a lease an active course vouches for, and
never a read of everything at once."""

from __future__ import annotations

from typing import Any, cast

from admission import GlobalHolder, RunRef
from db.reconcile import ActiveCourse
from reconciler.core import Policy, Reconciler, Stores
from reconciler.runs import RunState
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

    async def active_runs(self, course_ids: list[str]) -> dict[str, tuple[str, str]]:
        return {c: (f"run-{c}", "u") for c in course_ids if c in COURSES}


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
        if workflow_ids:  # as `RunLookup`: no ids, no query
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
    assert runs.queries == [10, 10, 3]  # the lease pages asked nothing: every lease vouched


async def test_a_lease_page_looks_up_only_the_leases_no_active_course_vouches_for() -> None:
    """A lease of another run than its course names, of another user, without a run id, or of
    a workflow that is no course of ours is looked up in visibility; the vouched ones are not."""
    vouched = LEASES[0]
    others = [
        GlobalHolder("u", LEASES[1].holder, 1e12, 0.0, "an-older-run"),
        GlobalHolder("someone-else", LEASES[2].holder, 1e12, 0.0, LEASES[2].run_id),
        GlobalHolder("u", LEASES[3].holder, 1e12, 0.0, ""),
        GlobalHolder("u", "not-a-course-workflow", 1e12, 0.0, "run-x"),
    ]
    looked_up: list[list[str]] = []

    class Runs(FakeRuns):
        async def open_among(self, workflow_ids: list[str]) -> dict[str, str]:
            looked_up.append(list(workflow_ids))
            return {wid: "whatever-is-open" for wid in workflow_ids}

        async def describe(self, workflow_id: str, run_id: str | None) -> Any:
            return RunState("RUNNING", run_id or "")

    class Leases(FakeLeases):
        async def holders_page(self, cursor: str, count: int) -> tuple[str, list[GlobalHolder]]:
            return "0", [vouched, *others]

    stores = Stores(
        courses=cast(Any, None),
        reconcile=cast(Any, FakeCourses()),
        leases=cast(Any, Leases()),
        runs=cast(Any, Runs()),
        progress=cast(Any, None),
    )
    policy = Policy(grace_seconds=60, stuck_after_seconds=900, default_ttl_seconds=3600)
    page = await Reconciler(stores, policy).leases_page("0")
    assert page.seen == 5
    assert page.repairs == []
    assert looked_up == [[lease.holder for lease in others]]
