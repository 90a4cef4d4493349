"""Contract of the status, cancel and `/me/concurrency` endpoints: each answer they document."""

from __future__ import annotations

import uuid

import asyncpg
import httpx

from tests.api.support import QUICK, course_row, generation, wait_status
from tests.factories import bearer, hs_token, insert_course, insert_user
from tests.helpers import eventually

# What a run of these tests undoes when it rolls back after step 2 (STAGE_CLEANUP_ACTIVITIES
# of the API tests lists structure_analysis).
UNDONE = ["structure_analysis_cleanup", "finish_generation", "release_lease"]


async def test_status_of_a_course_without_run(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A never-started course reads back with null run fields and the caller's tier."""
    user = await insert_user(pg_pool, tier="standard")
    course = await insert_course(pg_pool, user, simulation=QUICK)
    response = await client.get(generation(course), headers=bearer(hs_token(user)))
    assert response.status_code == 200
    assert response.json() == {
        "courseId": course,
        "workflowId": None,
        "runId": None,
        "generationStatus": None,
        "workflowStatus": None,
        "progress": {"simulation": QUICK},
        "startedAt": None,
        "completedAt": None,
        "tier": "STANDARD",
        "waiting": None,
        "compensations": None,
    }


async def test_status_follows_the_run_to_completion(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """Status shows the run while it goes and COMPLETED with the full progress document after."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    started = (await client.post(generation(course), headers=headers)).json()
    early = (await client.get(generation(course), headers=headers)).json()
    assert early["runId"] == started["runId"]
    assert early["workflowId"] == started["workflowId"]

    async def completed() -> dict[str, object]:
        body: dict[str, object] = (await client.get(generation(course), headers=headers)).json()
        assert body["workflowStatus"] == "COMPLETED", body
        return body

    body = await eventually(completed, timeout=30)
    assert body["generationStatus"] == "completed"
    assert (body["waiting"], body["compensations"]) == (None, None)
    progress = body["progress"]
    assert isinstance(progress, dict)
    assert progress["percentage"] == 100
    assert [step["status"] for step in progress["steps"]] == ["completed"] * 5
    assert progress["simulation"] == QUICK
    assert body["startedAt"]
    assert body["completedAt"]


async def test_status_when_temporal_forgot_the_run(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """A recorded run that Temporal does not know reads back with workflowStatus null."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    await pg_pool.execute(
        "UPDATE public.courses SET workflow_id = $2, run_id = $3 WHERE id = $1",
        uuid.UUID(course),
        f"course-generation-{course}",
        str(uuid.uuid4()),
    )
    response = await client.get(generation(course), headers=bearer(hs_token(user)))
    assert response.status_code == 200
    assert response.json()["workflowStatus"] is None


async def test_status_404_and_401(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """Status of an unknown course is 404; without a token 401."""
    user = await insert_user(pg_pool)
    missing = await client.get(generation(str(uuid.uuid4())), headers=bearer(hs_token(user)))
    anonymous = await client.get(generation(str(uuid.uuid4())))
    assert (missing.status_code, anonymous.status_code) == (404, 401)


async def test_cancel_running_then_not_running(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """Cancel answers 202 while the run is open (repeats too), the run ends CANCELED with the
    course cancelled, and a later cancel is 409 not-running."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 30})
    headers = bearer(hs_token(user))
    started = (await client.post(generation(course), headers=headers)).json()
    cancel = f"{generation(course)}/cancel"
    first = await client.post(cancel, headers=headers, json={"reason": "changed my mind"})
    again = await client.post(cancel, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202), again.text
    assert first.json() == {
        "courseId": course,
        "workflowId": started["workflowId"],
        "runId": started["runId"],
        "status": "cancelling",
    }
    body = await wait_status(client, course, headers, "cancelled")

    async def canceled() -> None:
        response = await client.get(generation(course), headers=headers)
        assert response.json()["workflowStatus"] == "CANCELED"
        # the cancel may reach the run before step 2 registered the stage cleanup
        assert response.json()["compensations"] in (UNDONE, UNDONE[1:])

    await eventually(canceled, timeout=15)
    failed = [step for step in body["progress"]["steps"] if step["status"] == "failed"]
    assert [step["error"] for step in failed] == ["changed my mind"]
    late = await client.post(cancel, headers=headers)
    assert late.status_code == 409
    assert late.json()["type"] == "/problems/not-running"


async def test_status_of_a_failed_run_lists_what_it_undid(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """Once a run rolled back, `compensations` lists its saga's undos in order (the stage
    cleanup listed in STAGE_CLEANUP_ACTIVITIES, the course, the lease)."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={**QUICK, "fail_at_step": 3})
    headers = bearer(hs_token(user))
    await client.post(generation(course), headers=headers)

    async def failed() -> dict[str, object]:
        body: dict[str, object] = (await client.get(generation(course), headers=headers)).json()
        assert body["workflowStatus"] == "FAILED", body
        return body

    body = await eventually(failed, timeout=30)
    assert (body["compensations"], body["waiting"]) == (UNDONE, None)


async def test_cancel_without_run_is_409(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """Cancelling a course that never ran is 409 not-running; the row is untouched."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    response = await client.post(f"{generation(course)}/cancel", headers=bearer(hs_token(user)))
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/not-running"
    assert (await course_row(pg_pool, course))["generation_status"] is None


async def test_cancel_404_401_422(client: httpx.AsyncClient, pg_pool: asyncpg.Pool) -> None:
    """Cancel of an unknown course is 404, without a token 401, with unknown fields 422."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation=QUICK)
    headers = bearer(hs_token(user))
    missing = await client.post(f"{generation(str(uuid.uuid4()))}/cancel", headers=headers)
    no_token = await client.post(f"{generation(course)}/cancel")
    extra = await client.post(f"{generation(course)}/cancel", headers=headers, json={"x": 1})
    assert (missing.status_code, no_token.status_code, extra.status_code) == (404, 401, 422)


async def test_me_concurrency_lists_active_courses(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool
) -> None:
    """`/me/concurrency` gives the tier, its limit and the courses holding a slot."""
    user = await insert_user(pg_pool, tier="BASIC")
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 30})
    headers = bearer(hs_token(user))
    idle = (await client.get("/api/v1/me/concurrency", headers=headers)).json()
    assert idle == {"tier": "BASIC", "limit": 2, "active": []}
    started = (await client.post(generation(course), headers=headers)).json()
    busy = (await client.get("/api/v1/me/concurrency", headers=headers)).json()
    assert [(a["courseId"], a["workflowId"]) for a in busy["active"]] == [
        (course, started["workflowId"])
    ]
    assert busy["active"][0]["since"]
    await client.post(f"{generation(course)}/cancel", headers=headers)
    await wait_status(client, course, headers, "cancelled")
