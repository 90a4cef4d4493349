"""What a run reports: its state for the `progress` query, the Web UI and the admission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows import search_attributes as sa
from workflows.steps import Step
from workflows.types import AdmissionResult, Decision, GenerationType

with workflow.unsafe.imports_passed_through():
    from activities.types import ReserveLeaseResult


@dataclass
class RunProgress:
    """The `progress` query: phase (admitting | running | closing), step and admission."""

    phase: str
    step: int
    step_status: str
    generation_status: str | None
    generation_type: GenerationType | None
    admission: AdmissionResult | None


@dataclass
class RunState:
    """The run's own view of itself; `set_status` also updates the Web UI and search."""

    phase: str = "admitting"
    step: Step | None = None
    step_status: str = "pending"
    status: str | None = None
    admission: AdmissionResult | None = None

    @property
    def generation_type(self) -> GenerationType | None:
        """The claimed branch: set on the admission once the course is claimed."""
        return self.admission.generation_type if self.admission else None

    def snapshot(self) -> RunProgress:
        return RunProgress(
            phase=self.phase,
            step=self.step.id if self.step else 0,
            step_status=self.step_status,
            generation_status=self.status,
            generation_type=self.generation_type,
            admission=self.admission,
        )

    def set_status(self, status: str, *also: SearchAttributeUpdate[Any]) -> None:
        """The status, upserted with `also` in one search-attribute update (one event)."""
        self.status = status
        workflow.upsert_search_attributes([sa.GENERATION_STATUS.value_set(status), *also])
        step = f"step {self.step.id}/5 · {self.step.name}" if self.step else "admission"
        workflow.set_current_details(f"**{status}** — {step} ({self.step_status})")


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
