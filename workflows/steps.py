"""The five steps of a run: names, stage activities, statuses, messages and retry budgets.

The frontend reads the step names and messages verbatim. Pure data, imported by the workflow
sandbox, the activities, the settings and the tests; the stage names are defined here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from workflows.types import GenerationType

DOCUMENT_PROCESSING: GenerationType = "DOCUMENT_PROCESSING"
STRUCTURE_ANALYSIS: GenerationType = "STRUCTURE_ANALYSIS"
CANCELLED_MESSAGE = "Отменено пользователем"
INITIALIZED_MESSAGE = "Инициализация завершена"


@dataclass(frozen=True)
class Step:
    id: int
    name: str
    stage: str | None  # the stage activity; None for the orchestrator's own step 1
    status: str  # generation_status while the step runs
    started: str  # progress message for `in_progress`
    done: str  # progress message for `completed`
    attempts: int = 1  # how many times the stage activity is tried


_STEP_1 = Step(
    1, "Запуск генерации", None, "initializing", "Запуск генерации курса...", INITIALIZED_MESSAGE
)
_STEP_2 = {
    DOCUMENT_PROCESSING: Step(
        id=2,
        name="Обработка документов",
        stage="document_processing",
        status="processing_documents",
        started="Обрабатываем загруженные документы...",
        done="Документы успешно обработаны",
        attempts=3,
    ),
    STRUCTURE_ANALYSIS: Step(
        id=2,
        name="Анализ задачи",
        stage="structure_analysis",
        status="analyzing_task",
        started="Анализируем задачу курса...",
        done="Анализ задачи завершен",
        attempts=3,
    ),
}
_LATER = (
    Step(
        id=3,
        name="Генерация структуры",
        stage="structure_generation",
        status="generating_structure",
        started="Генерация структуры курса...",
        done="Структура курса определена",
        attempts=3,
    ),
    Step(
        id=4,
        name="Создание контента",
        stage="text_generation",
        status="generating_content",
        started="Генерация контента...",
        done="Контент сгенерирован",
        attempts=5,
    ),
    Step(
        id=5,
        name="Финализация",
        stage="finalization",
        status="finalizing",
        started="Финализация курса...",
        done="Курс завершен",
        attempts=5,
    ),
)
STAGE_STEPS = (*_STEP_2.values(), *_LATER)
STAGE_NAMES = tuple(step.stage for step in STAGE_STEPS if step.stage)


def steps_for(generation_type: GenerationType) -> tuple[Step, ...]:
    """All five steps of the branch, in order."""
    return (_STEP_1, _STEP_2[generation_type], *_LATER)


def stage_steps(generation_type: GenerationType) -> tuple[Step, ...]:
    """Steps 2–5: the ones that call a stage activity."""
    return steps_for(generation_type)[1:]


def holds(simulation: Mapping[str, object], knob: str, step: int) -> bool:
    """Whether the SIMULATION knob `hold_after_step` / `hold_before_step` parks the run at
    step `step` (after it is written `completed` / before it starts)."""
    return simulation.get(knob) == step


def holds_between(simulation: Mapping[str, object], done: int, step: int) -> bool:
    """Whether a simulation hold parks the run between step `done` completed and step `step`
    in progress, so the two are written apart."""
    return holds(simulation, "hold_after_step", done) or holds(simulation, "hold_before_step", step)


def cleanup_name(stage: str) -> str:
    """The activity that undoes a stage's side effects (`<stage>_cleanup`, same queue)."""
    return f"{stage}_cleanup"


def stage_queue(prefix: str, stage: str) -> str:
    """The task queue of `stage` and its cleanup: `<TEMPORAL_STAGE_TASK_QUEUE>.<stage>`, so each
    stage has pollers of its own (a poller is handed any task of its queue)."""
    return f"{prefix}.{stage}"


def generation_type_of(files: object) -> tuple[GenerationType, bool]:
    """The branch for `generation_progress.files`, and whether the value was well-formed."""
    if isinstance(files, list):
        return (DOCUMENT_PROCESSING if files else STRUCTURE_ANALYSIS), True
    return STRUCTURE_ANALYSIS, files is None
