"""The old frontend's error bodies under `/api/coursegen/`: `{error, details?}`, its texts.

The same problems as `/api/v1`, answered as the old route did: 400 (not 422) for a bad body,
403 (not 404) for another user's course, and, for any failure to start, a 500 whose message the
frontend shows to the user as is.
"""

from __future__ import annotations

from typing import Any

from api.problems import (
    ConcurrencyLimit,
    Forbidden,
    NotFound,
    NotYours,
    PayloadTooLarge,
    Problem,
    RateLimited,
    Unauthorized,
    ValidationProblem,
)

PREFIX = "/api/coursegen/"
FAILED = "Не удалось инициализировать генерацию курса. Попробуйте позже."
TEXTS: dict[type[Problem], tuple[int, str]] = {
    Unauthorized: (401, "Unauthorized: Invalid or missing authentication token"),
    NotYours: (403, "Forbidden: You do not have access to this course"),
    NotFound: (404, "Course not found"),
    ValidationProblem: (400, "Invalid request body"),
    RateLimited: (429, "Too many requests. Please try again later."),
    PayloadTooLarge: (413, "Payload too large"),
}


class LegacyBadRequest(ValidationProblem):
    """A 400 of the old endpoint, with its own `error` text and `details`."""


def body(problem: Problem, *, internal: bool = False) -> tuple[int, dict[str, Any]]:
    """The status and `{error, details?}` body the old frontend expects for `problem`."""
    if isinstance(problem, LegacyBadRequest):
        return 400, {"error": problem.detail, "details": problem.extensions}
    if isinstance(problem, ConcurrencyLimit):
        return 429, _limit(problem.extensions)
    if isinstance(problem, Forbidden):
        return 403, {"error": f"Forbidden: {problem.detail}"}
    for kind, (status, text) in TEXTS.items():
        if type(problem) is kind:
            return status, {"error": text}
    if problem.status < 500 and problem.slug == "http":
        return problem.status, {"error": problem.title}
    return 500, {"error": "Internal server error" if internal else FAILED}


def _limit(ext: dict[str, Any]) -> dict[str, Any]:
    tier, limit = ext.get("tier"), ext.get("limit")
    details = {"tier": tier, "user_limit": limit, "current_user_jobs": len(ext.get("active", []))}
    if ext.get("reason") == "global_limit":
        return {
            "error": "System at capacity. Please try again in a few minutes.",
            "details": details,
        }
    text = f"Too many concurrent jobs. {tier} tier allows {limit} concurrent course generation."
    return {"error": text, "details": details}
