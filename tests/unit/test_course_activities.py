"""`update_progress` frees the run's lease after its writes when asked (the run's last write),
and leaves it to the run when the lease store does not answer."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.course import CourseActivities
from activities.types import ReleaseLeaseInput, RunOptions, StepWrite, UpdateProgressInput
from db.repository import CourseRepository
from workflows import errors


class Rows(CourseRepository):
    """Records progress writes instead of making them."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def update_progress_steps(self, course_id: str, writes: Any) -> Any:
        self.log.extend(f"write {w['step_id']} {w['status']}" for w in writes)
        return {}


LEASE = ReleaseLeaseInput("user-1", "course-generation-c1", "run-1")
DONE = StepWrite(5, "completed", "Курс завершен")


def activities(log: list[str], fails: bool = False) -> CourseActivities:
    async def release(inp: ReleaseLeaseInput) -> None:
        if fails:
            raise ApplicationError("redis is unavailable", type=errors.LEASE_STORE_UNAVAILABLE)
        log.append(f"release {inp.run_id}")

    return CourseActivities(Rows(log), RunOptions("stages", 60, 10), release)


@pytest.mark.parametrize(
    ("release", "fails", "freed", "log"),
    [
        (LEASE, False, True, ["write 5 completed", "release run-1"]),
        (LEASE, True, False, ["write 5 completed"]),
        (None, False, False, ["write 5 completed"]),
    ],
)
async def test_the_last_write_frees_the_lease(
    release: ReleaseLeaseInput | None, fails: bool, freed: bool, log: list[str]
) -> None:
    happened: list[str] = []
    inp = UpdateProgressInput("c1", "run-1", [DONE], release)
    result = await ActivityEnvironment().run(activities(happened, fails).update_progress, inp)
    assert (result, happened) == (freed, log)
