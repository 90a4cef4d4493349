"""Schemathesis against the served `/openapi.json`, in-process over ASGI, with every check:
no server error, no undocumented status code, content types and schemas as documented.

Each operation is fuzzed with schema-valid (positive) and schema-violating (negative) data.
(The `@schema.parametrize()` lazy-fixture plugin of schemathesis 4.32 does not run on pytest 9,
so the operations are driven through their Hypothesis strategies directly.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import CheckFunction
from schemathesis.checks import CHECKS, load_all_checks, negative_data_rejection, not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import status_code_conformance

from api.app import create_app
from settings import Settings
from tests.factories import bearer, hs_token

load_all_checks()
# Checks that need configuration we do not use here: peers for BOLA (the isolation test covers
# it) and a response-time budget (timing belongs to bench/, never to tests).
SKIPPED = {"object_level_authorization", "max_response_time"}
# Check classes (schemathesis has none built in) run only under its own runner, not from a case.
ALL_CHECKS: list[CheckFunction] = [
    check
    for check in CHECKS.get_all()
    if not isinstance(check, type) and check.__name__ not in SKIPPED
]
# Operations that take no parameter and no body: no data can violate their schema, so they are
# fuzzed with positive data only.
NO_INPUT = {"/healthz", "/readyz", "/api/v1/me/concurrency", "/api/v1/me/webhook-secret"}
BODY_CAP = 64 * 1024  # request bodies over this are refused with 413 before any route runs
FUZZ_USER = "7b0b9a3e-0000-4000-8000-00000000f022"
OPERATIONS = [
    ("POST", "/api/v1/courses/{courseId}/generation"),
    ("GET", "/api/v1/courses/{courseId}/generation"),
    ("POST", "/api/v1/courses/{courseId}/generation/cancel"),
    ("GET", "/api/v1/me/concurrency"),
    ("GET", "/api/v1/me/webhook-secret"),
    ("POST", "/api/coursegen/generate"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
]
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for mode in GenerationMode
    for method, path in OPERATIONS
    if mode is GenerationMode.POSITIVE or path not in NO_INPUT
]


@pytest.fixture(scope="module")
def api_schema(api_settings: Settings) -> Iterator[schemathesis.BaseSchema]:
    """The app's own schema, loaded through the app (its lifespan runs in schemathesis' loop)."""
    app = create_app(api_settings)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    asgi.shutdown_lifespans()


def test_every_operation_is_covered(api_schema: schemathesis.BaseSchema) -> None:
    """The fuzzed list below is the whole served schema except the SSE `/events` stream."""
    served = {
        (method.upper(), path)
        for path, item in api_schema.raw_schema["paths"].items()
        for method in item
        if not path.endswith("/events")  # streaming: excluded from fuzzing
    }
    assert served == set(OPERATIONS)


def test_only_operations_without_input_skip_negative_data(
    api_schema: schemathesis.BaseSchema,
) -> None:
    """The operations fuzzed with positive data only are exactly those whose schema declares no
    parameter and no request body."""
    paths = api_schema.raw_schema["paths"]

    def takes_input(method: str, path: str) -> bool:
        operation = paths[path][method.lower()]
        declared = [paths[path].get("parameters"), operation.get("parameters")]
        return any(declared) or "requestBody" in operation

    assert {path for method, path in OPERATIONS if not takes_input(method, path)} == NO_INPUT


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_conforms(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    """The operation answers only documented codes, types and shapes, and never a 5xx."""
    operation = api_schema[path][method]
    token = st.sampled_from([hs_token(FUZZ_USER), "garbage"])

    @given(case=operation.as_strategy(generation_mode=mode), token=token)
    @settings(
        max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    def fuzz(case: schemathesis.Case[Any], token: str) -> None:
        response = case.call(headers=bearer(token))
        if response.status_code == 413:
            sent = response.request.body
            assert isinstance(sent, bytes | str)
            assert len(sent) > BODY_CAP, "413 for a body under the cap"
        case.validate_response(response, checks=_checks(path, response.status_code))

    fuzz()


def _checks(path: str, status: int) -> list[CheckFunction]:
    """All checks, except: a 413 comes from the body cap, which answers before any operation
    does, so it is neither among an operation's documented codes nor a rejection the
    negative-data check knows (the caller checks the body was over the cap instead); and
    `/readyz` answers a documented 503 whenever something is not ready."""
    skip = {negative_data_rejection, status_code_conformance} if status == 413 else set()
    if path == "/readyz":
        skip.add(not_a_server_error)
    return [check for check in ALL_CHECKS if check not in skip]
