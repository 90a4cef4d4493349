"""Course activities: claim, load, progress writes and the terminal write (DESIGN §3, §5).

Each activity is one repository call (the claim is the local start-path activity). A NULL
from the database means the course was deleted and surfaces as the non-retryable
`CourseNotFound`; the repository's typed errors become `ApplicationError`s here, where the
retry decision belongs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import errors
from db.repository import (
    CourseRepository,
    CourseRow,
    DatabaseUnavailable,
    InvalidArgument,
    InvalidTransition,
)
from workflows.steps import generation_type_of, steps_for
from workflows.types import CourseBrief, GenerationType

log = logging.getLogger(__name__)
T = TypeVar("T")
BRIEF_FIELDS = tuple(CourseBrief.__dataclass_fields__)


@dataclass
class StageOptions:
    """How the workflow calls the stage activities; the worker's settings, carried in history."""

    task_queue: str
    start_to_close_seconds: float
    heartbeat_timeout_seconds: float
    cleanup_stages: list[str] = field(default_factory=list)


@dataclass
class ClaimCourseInput:
    course_id: str
    workflow_id: str
    run_id: str


@dataclass
class LoadCourseInput:
    course_id: str


@dataclass
class LoadedCourse:
    brief: CourseBrief
    generation_type: GenerationType
    simulation: dict[str, Any]
    stages: StageOptions


@dataclass
class ClaimCourseResult:
    """`course` is what `load_course` would answer, from the row the claim already read, so
    the run needs no separate load (None in results recorded before it was added)."""

    generation_type: GenerationType
    course: LoadedCourse | None = None


@dataclass
class ProgressInput:
    course_id: str
    run_id: str
    step_id: int
    status: str
    message: str
    error_message: str | None = None
    error_details: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class FinishInput:
    course_id: str
    run_id: str
    outcome: str  # "failed" | "cancelled"
    message: str
    error_details: dict[str, Any] | None = None


def course_not_found(course_id: str) -> ApplicationError:
    return ApplicationError(
        f"course {course_id} does not exist", type=errors.COURSE_NOT_FOUND, non_retryable=True
    )


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
    except DatabaseUnavailable as exc:
        raise ApplicationError(str(exc), type=errors.DATABASE_UNAVAILABLE) from exc


class CourseActivities:
    """Activities over the `courses` row; `stages` is what `load_course` hands the workflow."""

    def __init__(self, repository: CourseRepository, stages: StageOptions) -> None:
        self._repository = repository
        self._stages = stages

    @activity.defn(name="claim_course")
    async def claim_course(self, inp: ClaimCourseInput) -> ClaimCourseResult:
        """Claim the course for this run (`begin_course_generation`), then step 1 in progress;
        answers the loaded course too (read before the claim, which does not change it)."""
        course = await guarded(lambda: self._repository.get_course(inp.course_id))
        if course is None:
            raise course_not_found(inp.course_id)
        loaded = self._loaded(inp.course_id, course)
        generation_type = loaded.generation_type
        claimed = await guarded(
            lambda: self._repository.begin_generation(
                inp.course_id, inp.workflow_id, inp.run_id, generation_type
            )
        )
        if claimed is None:
            raise course_not_found(inp.course_id)
        first = steps_for(generation_type)[0]
        await self._write(
            ProgressInput(inp.course_id, inp.run_id, first.id, "in_progress", first.started)
        )
        return ClaimCourseResult(generation_type, loaded)

    @activity.defn(name="load_course")
    async def load_course(self, inp: LoadCourseInput) -> LoadedCourse:
        """The brief, the branch and the simulation knobs of the course. Kept registered only so
        histories recorded before `claim_course` answered the course still replay."""
        course = await guarded(lambda: self._repository.get_course(inp.course_id))
        if course is None:
            raise course_not_found(inp.course_id)
        return self._loaded(inp.course_id, course)

    @activity.defn(name="update_progress")
    async def update_progress(self, inp: ProgressInput) -> None:
        """One `update_course_progress` call, fenced by the run id carried in metadata."""
        await self._write(inp)

    @activity.defn(name="finish_generation")
    async def finish_generation(self, inp: FinishInput) -> None:
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
            stages=self._stages,
        )

    async def _write(self, inp: ProgressInput) -> None:
        metadata = {**inp.metadata, "run_id": inp.run_id}
        document = await guarded(
            lambda: self._repository.update_progress(
                inp.course_id,
                inp.step_id,
                inp.status,
                inp.message,
                error_message=inp.error_message,
                error_details=inp.error_details,
                metadata=metadata,
            )
        )
        if document is None:
            raise course_not_found(inp.course_id)

    @staticmethod
    def _generation_type(course_id: str, progress: dict[str, Any]) -> GenerationType:
        generation_type, well_formed = generation_type_of(progress.get("files"))
        if not well_formed:
            log.warning("malformed generation_progress.files", extra={"course_id": course_id})
        return generation_type
