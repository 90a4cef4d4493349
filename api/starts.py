"""Starting a generation: ownership, tier, then one update-with-start (the steps of
[admission](../docs/architecture.md#1-admission-gateway--workflow)).

The workflow decides admission; `api.answers` maps its `AdmissionResult` to an outcome or a
problem. Starts of one course that arrive while its update-with-start is in flight in this
process share it (`InFlight`): the first request's token starts the run, the others answer as
the repeats they are. Shared by `/api/v1/.../generation` and the old `/api/coursegen/generate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from admission import Leases
from api import answers
from api.auth import Principal
from api.inflight import InFlight
from api.limits import LimitCheck, Usage
from api.metrics import count_admission
from api.problems import START_ERRORS, AlreadyCompleted, NotFound, NotYours, start_problem
from api.ratelimit import StartRateLimiter
from api.temporal import TemporalConnector
from api.tiers import TierResolver
from db.repository import CourseRead, CourseRepository, CourseRow
from settings import Settings, TierPolicy
from tiers import Tier
from workflows.course_generation import CourseGenerationWorkflow
from workflows.start import start_operation
from workflows.types import AdmissionRequest, AdmissionResult, CourseGenerationInput

CLOSED_FIRST = "AcceptedUpdateCompletedWorkflow"
log = structlog.get_logger("api.starts")


@dataclass(frozen=True)
class StartCommand:
    course_id: str
    webhook_url: str | None
    regenerate: bool
    request_id: str


@dataclass(frozen=True)
class Started:
    result: AdmissionResult
    policy: TierPolicy


class Starter:
    def __init__(
        self,
        settings: Settings,
        courses: CourseRepository,
        tiers: TierResolver,
        temporal: TemporalConnector,
        limiter: StartRateLimiter,
        leases: Leases,
    ) -> None:
        self._settings, self._courses, self._tiers = settings, courses, tiers
        self._temporal, self._limiter = temporal, limiter
        self._limit = LimitCheck(leases, courses)
        self._inflight: InFlight[AdmissionResult] = InFlight()

    async def start(self, principal: Principal, cmd: StartCommand) -> Started:
        """Admit a run (202/200 at the edge) or raise the problem that explains why not."""
        await self._limiter.hit(principal.user_id)
        usage = self._limit.read_usage(principal.user_id)  # overlaps the course read
        read, tier = await self.owned_read(principal, cmd.course_id)
        course = read.course
        if course.generation_status == "completed" and not cmd.regenerate:
            raise AlreadyCompleted("the course is completed; send regenerate: true to start again")
        policy = self._settings.admission.policy(tier)
        result = await self._shared_admit(principal, cmd, policy, usage)
        count_admission(policy.tier.value, result)
        return Started(
            answers.checked(result, self._settings.admission.retry_after_seconds), policy
        )

    async def owned_course(self, principal: Principal, course_id: str) -> CourseRow:
        return _owned(principal, await self._courses.get_course(course_id))

    async def owned_read(self, principal: Principal, course_id: str) -> tuple[CourseRead, Tier]:
        """The caller's course (404 and 403 as `owned_course`) and the caller's tier, from one
        query (`CourseRepository.get_course_for`)."""
        read = await self._courses.get_course_for(course_id, principal.user_id)
        if read is None:
            raise NotFound("no such course")
        _owned(principal, read.course)
        return read, self._tiers.resolve(principal, read.caller_tier)

    async def _shared_admit(
        self, principal: Principal, cmd: StartCommand, policy: TierPolicy, usage: Usage
    ) -> AdmissionResult:
        """One update-with-start per course in flight: a request that joins another's gets the
        same answer as a repeat of that request (the run's ids, or its refusal)."""
        result, leader = await self._inflight.run(
            cmd.course_id, lambda: self._admit(principal, cmd, policy, usage)
        )
        return result if leader else answers.as_repeat(result)

    async def _admit(
        self, principal: Principal, cmd: StartCommand, policy: TierPolicy, usage: Usage
    ) -> AdmissionResult:
        refused = await self._limit.refusal(usage, principal.user_id, cmd.course_id, policy)
        if refused is not None:
            return refused
        client = await self._temporal.client()
        token = uuid.uuid4().hex
        inp = CourseGenerationInput(
            course_id=cmd.course_id,
            user_id=principal.user_id,
            tier=policy.tier.value,
            request_id=cmd.request_id,
            start_token=token,
            webhook_url=cmd.webhook_url,
        )
        for may_retry in (True, False):
            try:
                return await self._update_with_start(client, inp, policy)
            except START_ERRORS as exc:
                duplicate = answers.duplicate_of(exc)
                if duplicate is not None:
                    return duplicate
                if not (may_retry and _closed_first(exc)):
                    raise start_problem(exc) from exc
                log.info("run closed before the admission update; retrying once")
        raise AssertionError("the second attempt returns or raises")

    async def _update_with_start(
        self, client: Client, inp: CourseGenerationInput, policy: TierPolicy
    ) -> AdmissionResult:
        fair = self._settings.temporal.fairness_enabled
        operation = start_operation(
            inp,
            task_queue=self._settings.temporal.task_queue,
            execution_timeout_seconds=self._settings.workflow.execution_timeout_seconds,
            priority_key=policy.priority_key,
            fairness_weight=policy.weight if fair else None,
        )
        try:
            return await client.execute_update_with_start_workflow(
                CourseGenerationWorkflow.admission,
                AdmissionRequest(inp.start_token),
                start_workflow_operation=operation,
                rpc_timeout=timedelta(seconds=self._settings.api.start_timeout_seconds),
            )
        except BaseException:
            await _settle(operation)
            raise


def _owned(principal: Principal, course: CourseRow | None) -> CourseRow:
    """`course` when the caller owns it: an absent course is 404, another user's 403."""
    if course is None:
        raise NotFound("no such course")
    if course.user_id != principal.user_id:
        raise NotYours("no such course")
    return course


async def _settle(operation: WithStartWorkflowOperation[Any, Any]) -> None:
    """Retrieve the start half's outcome after a failure, so asyncio does not log it as lost."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(0.1):
            await operation.workflow_handle()


def _closed_first(exc: BaseException) -> bool:
    if isinstance(exc, RPCError):
        return exc.status == RPCStatusCode.NOT_FOUND
    cause = exc.cause if isinstance(exc, WorkflowUpdateFailedError) else None
    return isinstance(cause, ApplicationError) and cause.type == CLOSED_FIRST
