"""What the run reports: the `progress` query's answer and the admission answers."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

from workflows.types import AdmissionResult, Decision, GenerationType

with workflow.unsafe.imports_passed_through():
    from activities.admission import ReserveLeaseResult


@dataclass
class RunProgress:
    """The `progress` query: phase (admitting | running | closing), step and admission."""

    phase: str
    step: int
    step_status: str
    generation_status: str | None
    generation_type: GenerationType | None
    admission: AdmissionResult | None


def admission_result(
    decision: Decision,
    tier: str,
    ids: tuple[str, str],
    generation_type: GenerationType | None = None,
    reserved: ReserveLeaseResult | None = None,
) -> AdmissionResult:
    """The answer of the `admission` update (its `new_run` is set per request)."""
    return AdmissionResult(
        decision=decision,
        reason=reserved.reason if reserved else None,
        tier=tier,
        limit=reserved.limit if reserved else 0,
        holders=list(reserved.holders) if reserved else [],
        generation_type=generation_type,
        workflow_id=ids[0],
        run_id=ids[1],
    )
