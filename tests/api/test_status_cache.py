"""Status reads and the gateway's cache of closed runs, through the app and the dev server: an
open run is described on every read (its status moves from RUNNING to COMPLETED), a closed one
is described once and then answered as Temporal said, exactly as before."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

import api.runs
from tests.api.support import generation
from tests.factories import bearer, hs_token, insert_course, insert_user
from tests.helpers import eventually
from workflows.types import workflow_id_for


@pytest.fixture
def describes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The workflow ids of the describes the gateway sends from now on."""
    sent: list[str] = []

    def counted(**fields: Any) -> DescribeWorkflowExecutionRequest:
        sent.append(fields["execution"].workflow_id)
        return DescribeWorkflowExecutionRequest(**fields)

    monkeypatch.setattr(api.runs, "DescribeWorkflowExecutionRequest", counted)
    return sent


async def _read(client: httpx.AsyncClient, course: str, headers: dict[str, str]) -> Any:
    response = await client.get(generation(course), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_open_run_is_read_live_until_it_completes(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, describes: list[str]
) -> None:
    """Reads of a RUNNING run describe it every time: the same reader sees it complete."""
    user = await insert_user(pg_pool)
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 1})
    headers = bearer(hs_token(user))
    assert (await client.post(generation(course), headers=headers)).status_code == 202
    for _ in range(2):
        assert (await _read(client, course, headers))["workflowStatus"] == "RUNNING"
    assert describes.count(workflow_id_for(course)) == 2

    async def completed() -> Any:
        body = await _read(client, course, headers)
        assert body["workflowStatus"] == "COMPLETED", body
        return body

    body = await eventually(completed, timeout=30)
    assert body["generationStatus"] == "completed"


async def test_a_closed_run_is_described_once_and_answered_as_before(
    client: httpx.AsyncClient, pg_pool: asyncpg.Pool, describes: list[str]
) -> None:
    """Once a read saw the run closed, later reads answer the same body, Temporal's COMPLETED,
    without another describe."""
    user = await insert_user(pg_pool, tier="basic")
    course = await insert_course(pg_pool, user, simulation={"stage_seconds": 0.1})
    headers = bearer(hs_token(user))
    started = (await client.post(generation(course), headers=headers)).json()

    async def closed() -> Any:
        body = await _read(client, course, headers)
        assert body["workflowStatus"] == "COMPLETED", body
        return body

    first = await eventually(closed, timeout=30)
    assert (first["runId"], first["generationStatus"], first["tier"]) == (
        started["runId"],
        "completed",
        "BASIC",
    )
    assert workflow_id_for(course) in describes
    describes.clear()
    for _ in range(3):
        assert await _read(client, course, headers) == first
    assert workflow_id_for(course) not in describes
