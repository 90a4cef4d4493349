"""Error type names carried by `ApplicationError.type`; the API and workflow switch on these.

Retry or not is decided where the error is raised:

- ``InvalidTransition``      PostgreSQL refused a generation_status move (P0001). Non-retryable.
- ``CourseNotFound``         the course row does not exist (deleted). Non-retryable.
- ``LeaseStoreUnavailable``  Redis did not answer in time. Retryable (HTTP 503 at the edge).
- ``DatabaseUnavailable``    PostgreSQL did not answer. Retryable.
- ``StageFailed``            a stage handler gave up (also ``fail_at_step``). Non-retryable.
- ``ProgressWriteFailed``    progress writes exhausted their retries. Non-retryable.
- ``InvalidInput``           a payload the activity cannot act on. Non-retryable.
"""

from __future__ import annotations

INVALID_TRANSITION = "InvalidTransition"
COURSE_NOT_FOUND = "CourseNotFound"
LEASE_STORE_UNAVAILABLE = "LeaseStoreUnavailable"
DATABASE_UNAVAILABLE = "DatabaseUnavailable"
STAGE_FAILED = "StageFailed"
PROGRESS_WRITE_FAILED = "ProgressWriteFailed"
INVALID_INPUT = "InvalidInput"

NON_RETRYABLE = (
    INVALID_TRANSITION,
    COURSE_NOT_FOUND,
    STAGE_FAILED,
    PROGRESS_WRITE_FAILED,
    INVALID_INPUT,
)
