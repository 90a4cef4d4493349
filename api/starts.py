"""Starting a generation: ownership, tier, then one update-with-start (the steps of
[admission](../docs/architecture.md#1-admission-gateway--workflow)).

The workflow decides admission; this module only maps its `AdmissionResult` to an outcome or a
problem. Shared by `/api/v1/.../generation` and the old `/api/coursegen/generate`.
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

from api.auth import Principal
from api.metrics import count_admission
from api.problems import (
    START_ERRORS,
    AlreadyCompleted,
    Closing,
    ConcurrencyLimit,
    DependencyUnavailable,
    NotFound,
    NotYours,
    start_problem,
)
from api.ratelimit import StartRateLimiter
from api.temporal import TemporalConnector
from api.tiers import TierResolver
from db.repository import CourseRepository, CourseRow
from settings import Settings, TierPolicy
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
    ) -> None:
        self._settings, self._courses, self._tiers = settings, courses, tiers
        self._temporal, self._limiter = temporal, limiter

    async def start(self, principal: Principal, cmd: StartCommand) -> Started:
        """Admit a run (202/200 at the edge) or raise the problem that explains why not."""
        await self._limiter.hit(principal.user_id)
        course, tier = await asyncio.gather(
            self.owned_course(principal, cmd.course_id), self._tiers.tier(principal)
        )
        if course.generation_status == "completed" and not cmd.regenerate:
            raise AlreadyCompleted("the course is completed; send regenerate: true to start again")
        policy = self._settings.admission.policy(tier)
        result = await self._admit(principal, cmd, policy)
        count_admission(policy.tier.value, result)
        return Started(self._checked(result), policy)

    async def owned_course(self, principal: Principal, course_id: str) -> CourseRow:
        course = await self._courses.get_course(course_id)
        if course is None:
            raise NotFound("no such course")
        if course.user_id != principal.user_id:
            raise NotYours("no such course")
        return course

    async def _admit(
        self, principal: Principal, cmd: StartCommand, policy: TierPolicy
    ) -> AdmissionResult:
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
        try:
            return await self._update_with_start(client, inp, policy)
        except START_ERRORS as exc:
            if not _closed_first(exc):
                raise start_problem(exc) from exc
            log.info("run closed before the admission update; retrying once")
        try:
            return await self._update_with_start(client, inp, policy)
        except START_ERRORS as exc:
            raise start_problem(exc) from exc

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

    def _checked(self, result: AdmissionResult) -> AdmissionResult:
        if result.decision == "admitted":
            return result
        if result.decision == "rejected":
            retry = str(self._settings.admission.retry_after_seconds)
            active = [
                {"courseId": h.course_id, "workflowId": h.workflow_id, "since": h.since}
                for h in result.holders
            ]
            raise ConcurrencyLimit(
                f"the {result.tier} tier allows {result.limit} concurrent generation(s)",
                headers={"Retry-After": retry},
                reason=result.reason,
                tier=result.tier,
                limit=result.limit,
                active=active if result.reason == "user_limit" else [],
            )
        if result.decision == "closing":
            raise Closing()
        raise DependencyUnavailable("the admission store (redis) is unavailable")


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
