"""Course activities: the claim, progress writes and the terminal write of a run.

Each activity is one repository call (the claim is the local start-path activity). A NULL
from the database means the course was deleted and surfaces as the non-retryable
`CourseNotFound`; the repository's typed errors become `ApplicationError`s here, where the
retry decision belongs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.types import (
    CLAIM_COURSE,
    FINISH_GENERATION,
    UPDATE_PROGRESS,
    ClaimCourseInput,
    ClaimCourseResult,
    FinishGenerationInput,
    LoadedCourse,
    ReleaseLeaseInput,
    RunOptions,
    StepWrite,
    UpdateProgressInput,
)
from db.repository import (
    CourseRepository,
    CourseRow,
    DatabaseUnavailable,
    InvalidArgument,
    InvalidTransition,
    StaleRun,
)
from workflows import errors
from workflows.errors import course_not_found
from workflows.steps import generation_type_of, holds_between, steps_for
from workflows.types import CourseBrief, GenerationType

log = logging.getLogger(__name__)
Release = Callable[[ReleaseLeaseInput], Awaitable[None]]
T = TypeVar("T")
BRIEF_FIELDS = tuple(CourseBrief.__dataclass_fields__)


async def guarded(call: Callable[[], Awaitable[T]]) -> T:
    """Run one repository call, turning its typed errors into typed `ApplicationError`s."""
    try:
        return await call()
    except InvalidTransition as exc:
        raise ApplicationError(
            str(exc), type=errors.INVALID_TRANSITION, non_retryable=True
        ) from exc
    except InvalidArgument as exc:
        raise ApplicationError(str(exc), type=errors.INVALID_INPUT, non_retryable=True) from exc
    except StaleRun as exc:
        raise ApplicationError(str(exc), type=errors.STALE_RUN, non_retryable=True) from exc
    except DatabaseUnavailable as exc:
        raise ApplicationError(str(exc), type=errors.DATABASE_UNAVAILABLE) from exc


class CourseActivities:
    """Activities over the `courses` row; `options` is what the claim hands the workflow."""

    def __init__(
        self, repository: CourseRepository, options: RunOptions, release: Release | None = None
    ) -> None:
        self._repository = repository
        self._options = options
        self._release = release

    @activity.defn(name=CLAIM_COURSE)
    async def claim_course(self, inp: ClaimCourseInput) -> ClaimCourseResult:
        """Claim the course for this run with step 1 in progress and, unless a simulation hold
        parks the run between them, step 1 completed and step 2 in progress too (saving the
        run a local activity): one call, one transaction. Answers the loaded course too (read
        before the claim, which does not change it)."""
        course = await guarded(lambda: self._repository.get_course(inp.course_id))
        if course is None:
            raise course_not_found(inp.course_id)
        loaded = self._loaded(inp.course_id, course)
        generation_type = loaded.generation_type
        first, second = steps_for(generation_type)[:2]
        writes = [StepWrite(first.id, "in_progress", first.started)]
        advanced = not holds_between(loaded.simulation, first.id, second.id)
        if advanced:
            writes.append(StepWrite(first.id, "completed", first.done))
            writes.append(StepWrite(second.id, "in_progress", second.started))
        claimed = await guarded(
            lambda: self._repository.begin_generation(
                inp.course_id,
                inp.workflow_id,
                inp.run_id,
                generation_type,
                datetime.fromisoformat(inp.run_started_at),
                inp.webhook_url,
                [_as_row(write, inp.run_id) for write in writes],
            )
        )
        if claimed is None:
            raise course_not_found(inp.course_id)
        return ClaimCourseResult(generation_type, loaded, advanced)

    @activity.defn(name=UPDATE_PROGRESS)
    async def update_progress(self, inp: UpdateProgressInput) -> bool:
        """The writes in one call, each through `update_course_progress` in order and fenced by
        the run id (all or none); then the lease `inp.release` names, if any. True once
        released; False leaves it to the run (a lease store that did not answer is not a reason
        to write the progress again)."""
        await self._write(inp.course_id, inp.run_id, inp.writes)
        if inp.release is None or self._release is None:
            return False
        try:
            await self._release(inp.release)
        except ApplicationError as exc:
            log.warning("lease release left to the run", extra={"error": str(exc)})
            return False
        return True

    @activity.defn(name=FINISH_GENERATION)
    async def finish_generation(self, inp: FinishGenerationInput) -> None:
        """The single terminal write for `failed` or `cancelled` (idempotent, fenced)."""
        document = await guarded(
            lambda: self._repository.finish_generation(
                inp.course_id, inp.run_id, inp.outcome, inp.message, inp.error_details
            )
        )
        if document is None:
            raise course_not_found(inp.course_id)

    def _loaded(self, course_id: str, course: CourseRow) -> LoadedCourse:
        progress = (
            course.generation_progress if isinstance(course.generation_progress, dict) else {}
        )
        simulation = progress.get("simulation")
        fields: dict[str, Any] = {name: getattr(course, name, None) for name in BRIEF_FIELDS}
        return LoadedCourse(
            brief=CourseBrief(**fields),
            generation_type=self._generation_type(course_id, progress),
            simulation=simulation if isinstance(simulation, dict) else {},
            options=self._options,
        )

    async def _write(self, course_id: str, run_id: str, writes: list[StepWrite]) -> None:
        """The writes in one `update_course_progress_steps` call (one transaction), each fenced
        by the run id carried in its metadata."""
        rows = [_as_row(write, run_id) for write in writes]
        document = await guarded(lambda: self._repository.update_progress_steps(course_id, rows))
        if document is None:
            raise course_not_found(course_id)

    @staticmethod
    def _generation_type(course_id: str, progress: dict[str, Any]) -> GenerationType:
        generation_type, well_formed = generation_type_of(progress.get("files"))
        if not well_formed:
            log.warning("malformed generation_progress.files", extra={"course_id": course_id})
        return generation_type


def _as_row(write: StepWrite, run_id: str) -> dict[str, Any]:
    """A step write as the claim and `update_course_progress_steps` hand it to PostgreSQL. Its
    metadata names the run: the fence (PostgreSQL refuses a write by another run than the one
    holding the course)."""
    row: dict[str, Any] = {
        "step_id": write.step_id,
        "status": write.status,
        "message": write.message,
        "metadata": {**write.metadata, "run_id": run_id},
    }
    if write.error_message is not None:
        row["error_message"] = write.error_message
    if write.error_details is not None:
        row["error_details"] = write.error_details
    return row
