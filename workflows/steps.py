"""The five steps of a run (DESIGN §2): names, stage activities, statuses and messages.

Pure data, imported by the workflow sandbox, the activities and the tests.
"""

from __future__ import annotations

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


_STEP_1 = Step(
    1, "Запуск генерации", None, "initializing", "Запуск генерации курса...", INITIALIZED_MESSAGE
)
_STEP_2 = {
    DOCUMENT_PROCESSING: Step(
        2,
        "Обработка документов",
        "document_processing",
        "processing_documents",
        "Обрабатываем загруженные документы...",
        "Документы успешно обработаны",
    ),
    STRUCTURE_ANALYSIS: Step(
        2,
        "Анализ задачи",
        "structure_analysis",
        "analyzing_task",
        "Анализируем задачу курса...",
        "Анализ задачи завершен",
    ),
}
_LATER = (
    Step(
        3,
        "Генерация структуры",
        "structure_generation",
        "generating_structure",
        "Генерация структуры курса...",
        "Структура курса определена",
    ),
    Step(
        4,
        "Создание контента",
        "text_generation",
        "generating_content",
        "Генерация контента...",
        "Контент сгенерирован",
    ),
    Step(5, "Финализация", "finalization", "finalizing", "Финализация курса...", "Курс завершен"),
)


def steps_for(generation_type: GenerationType) -> tuple[Step, ...]:
    """All five steps of the branch, in order."""
    return (_STEP_1, _STEP_2[generation_type], *_LATER)


def stage_steps(generation_type: GenerationType) -> tuple[Step, ...]:
    """Steps 2–5: the ones that call a stage activity."""
    return steps_for(generation_type)[1:]


def generation_type_of(files: object) -> tuple[GenerationType, bool]:
    """The branch for `generation_progress.files`, and whether the value was well-formed."""
    if isinstance(files, list):
        return (DOCUMENT_PROCESSING if files else STRUCTURE_ANALYSIS), True
    return STRUCTURE_ANALYSIS, files is None
