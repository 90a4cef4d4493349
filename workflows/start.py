"""How a run is started: the `WithStartWorkflowOperation` the gateway and the tests both use.

Pure code over plain values (no settings), so the API imports it and passes its settings in.
Built inside the gateway's request span, so the run's details name the trace that follows it.
"""

from __future__ import annotations

from datetime import timedelta

from opentelemetry import trace
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from tiers import parse_tier
from workflows import search_attributes as sa
from workflows.course_generation import CourseGenerationWorkflow
from workflows.types import CourseGenerationInput, GenerationOutcome, workflow_id_for


def start_operation(
    inp: CourseGenerationInput,
    *,
    task_queue: str,
    execution_timeout_seconds: int,
    priority_key: int,
    fairness_weight: float | None = None,
) -> WithStartWorkflowOperation[CourseGenerationWorkflow, GenerationOutcome]:
    """The start half of update-with-start for `inp.course_id`.

    Id `course-generation-<courseId>`, USE_EXISTING on conflict (a running run is attached to),
    ALLOW_DUPLICATE reuse (a closed run is followed by a new one), the tier's `priority_key`
    (inherited by every activity), the three start search attributes and the Web UI summary
    and details. Pass `fairness_weight` only where the server has fairness enabled; the
    fairness key is then the user id.
    """
    tier = parse_tier(inp.tier)[0].value
    fairness_key = inp.user_id if fairness_weight is not None else None
    return WithStartWorkflowOperation(
        CourseGenerationWorkflow.run,
        inp,
        id=workflow_id_for(inp.course_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        execution_timeout=timedelta(seconds=execution_timeout_seconds),
        priority=Priority(
            priority_key=priority_key, fairness_key=fairness_key, fairness_weight=fairness_weight
        ),
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.COURSE_ID, inp.course_id),
                SearchAttributePair(sa.USER_ID, inp.user_id),
                SearchAttributePair(sa.USER_TIER, tier),
            ]
        ),
        static_summary=f"Course generation {inp.course_id} ({tier})",
        static_details=_details(inp, tier, priority_key),
    )


def _details(inp: CourseGenerationInput, tier: str, priority_key: int) -> str:
    """The Web UI details (markdown). The webhook URL is the caller's text: it is shown as one
    inline code span (fenced by more backticks than it holds, control characters escaped), so
    no markdown in it renders."""
    webhook = "—"
    if inp.webhook_url:
        url = "".join(c if c.isprintable() else repr(c)[1:-1] for c in inp.webhook_url)
        fence = "`"
        while fence in url:
            fence += "`"
        webhook = f"{fence} {url} {fence}" if "`" in url else f"`{url}`"
    span = trace.get_current_span().get_span_context()
    return "\n".join(
        [
            "### Course generation",
            f"- **Course:** `{inp.course_id}`",
            f"- **User:** `{inp.user_id}` ({tier}, priority key {priority_key})",
            f"- **Request:** `{inp.request_id}`",
            f"- **Trace:** `{span.trace_id:032x}`" if span.is_valid else "- **Trace:** —",
            f"- **Webhook:** {webhook}",
            "",
            f"Cancel: `temporal workflow cancel --workflow-id {workflow_id_for(inp.course_id)}`",
        ]
    )
