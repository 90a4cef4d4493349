"""Error type names carried by `ApplicationError.type`; the API, the workflow and the
activities switch on these.

Retry or not is decided where the error is raised:

- ``InvalidTransition``      PostgreSQL refused a generation_status move (CG001). Non-retryable.
- ``CourseNotFound``         the course row does not exist (deleted). Non-retryable.
- ``LeaseStoreUnavailable``  Redis did not answer in time. Retryable (HTTP 503 at the edge).
- ``DatabaseUnavailable``    PostgreSQL did not answer. Retryable.
- ``StageFailed``            a stage handler gave up (also ``fail_at_step``). Non-retryable.
- ``InvalidInput``           a payload the activity cannot act on. Non-retryable.
- ``StaleRun``               the course or lease belongs to a newer run (CG002). Non-retryable:
                             the run ends `superseded` without touching either.
- ``RunDeadlineExceeded``    the run failed itself before its execution timeout.
- ``DuplicateStart``         the `admission` update's validator refused one more repeat of an
                             answered start; details[0] is the run's admission answer.

No IO: the workflow sandbox imports this module, and so does the API (which must not import
`activities`).
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

INVALID_TRANSITION = "InvalidTransition"
COURSE_NOT_FOUND = "CourseNotFound"
LEASE_STORE_UNAVAILABLE = "LeaseStoreUnavailable"
DATABASE_UNAVAILABLE = "DatabaseUnavailable"
STAGE_FAILED = "StageFailed"
INVALID_INPUT = "InvalidInput"
STALE_RUN = "StaleRun"
DUPLICATE_START = "DuplicateStart"
RUN_DEADLINE_EXCEEDED = "RunDeadlineExceeded"
TIMED_OUT_MESSAGE = "generation timed out"


def course_not_found(course_id: str) -> ApplicationError:
    return ApplicationError(
        f"course {course_id} does not exist", type=COURSE_NOT_FOUND, non_retryable=True
    )
