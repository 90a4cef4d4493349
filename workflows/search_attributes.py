"""The five `Keyword` search attributes of a run, shared by the workflow, worker and tests."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

COURSE_ID = SearchAttributeKey.for_keyword("CourseId")
USER_ID = SearchAttributeKey.for_keyword("UserId")
USER_TIER = SearchAttributeKey.for_keyword("UserTier")
GENERATION_TYPE = SearchAttributeKey.for_keyword("GenerationType")
GENERATION_STATUS = SearchAttributeKey.for_keyword("GenerationStatus")

ALL = (COURSE_ID, USER_ID, USER_TIER, GENERATION_TYPE, GENERATION_STATUS)
NAMES = tuple(key.name for key in ALL)
