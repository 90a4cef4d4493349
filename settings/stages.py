"""The stages: each stage queue's capacity, the activity timeouts, the cleanups, and which
stages this process simulates."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from settings.base import Group, split_csv
from workflows.steps import STAGE_NAMES


def _capacity_of(stage: str) -> Any:
    """`STAGE_CAPACITY_<STAGE>`: the slots of one stage's queue, unset = `STAGE_CAPACITY`."""
    return Field(default=None, ge=1, validation_alias=f"STAGE_CAPACITY_{stage.upper()}")


class StageSettings(Group):
    capacity: int = Field(default=10, ge=1, validation_alias="STAGE_CAPACITY")
    capacity_document_processing: int | None = _capacity_of("document_processing")
    capacity_structure_analysis: int | None = _capacity_of("structure_analysis")
    capacity_structure_generation: int | None = _capacity_of("structure_generation")
    capacity_text_generation: int | None = _capacity_of("text_generation")
    capacity_finalization: int | None = _capacity_of("finalization")
    resource_tuner: bool = Field(default=False, validation_alias="STAGE_RESOURCE_TUNER")
    heartbeat_timeout_seconds: float = Field(
        default=10, gt=0, validation_alias="STAGE_HEARTBEAT_TIMEOUT_SECONDS"
    )
    start_to_close_seconds: float = Field(
        default=3600, gt=0, validation_alias="STAGE_START_TO_CLOSE_SECONDS"
    )
    cleanup_activities: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="STAGE_CLEANUP_ACTIVITIES"
    )
    simulated_stages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(STAGE_NAMES), validation_alias="SIMULATED_STAGES"
    )
    simulated_stage_seconds: float = Field(
        default=2, ge=0, validation_alias="SIMULATED_STAGE_SECONDS"
    )

    def capacity_for(self, stage: str) -> int:
        """Slots of `stage`'s queue per worker: `STAGE_CAPACITY_<STAGE>`, else `STAGE_CAPACITY`."""
        own: int | None = getattr(self, f"capacity_{stage}")
        return self.capacity if own is None else own

    @field_validator("cleanup_activities", "simulated_stages", mode="before")
    @classmethod
    def _stage_list(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return []
        if isinstance(value, str) and value.strip().lower() == "all":
            return list(STAGE_NAMES)
        return split_csv(value)

    @field_validator("cleanup_activities", "simulated_stages")
    @classmethod
    def _known_stages(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(STAGE_NAMES))
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; known: {', '.join(STAGE_NAMES)}")
        return value
