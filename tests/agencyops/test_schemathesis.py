"""Schemathesis over every operation of the OpenAPI schema (/api/schema/), as an owner with a
Bearer token: no server error, and every answer's status code, content type and body conform to
the schema. Bounded (a few derandomized examples per operation, no coverage or stateful phase)
so it runs in `make test`; in process (WSGI), no network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from clients import services
from tests.conftest import World

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261126,
        "cache": {"enabled": False},
        "generation": {"max-examples": 5, "deterministic": True},
        "phases": {
            "examples": {"enabled": True},
            "fuzzing": {"enabled": True},
            "coverage": {"enabled": False},
            "stateful": {"enabled": False},
        },
    }
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _load() -> Any:
    """The schema as the running app serves it (generating it reads no database), with the
    app to call in process. Loaded at collection, so each operation is a test of its own
    (schemathesis' fixture-based loader does not support this pytest)."""
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler(), config=CONFIG)


schema = _load()


@pytest.fixture
def in_process_requests(db: Any) -> Iterator[None]:
    """Requests run in the test's transaction: Django must not close the connection after
    each one (its own test client arranges the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def owner_token(w: World) -> str:
    _, raw = services.api_token_issue(user=w.owner)
    return raw


@schema.parametrize()  # type: ignore[untyped-decorator]  # schemathesis' decorator is untyped
# The world and the token are the same for every example of an operation, by design.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_every_operation_conforms_to_the_schema(
    case: Any, owner_token: str, in_process_requests: None
) -> None:
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {owner_token}"}, checks=CHECKS
    )
    # Every case is the owner's: a 401 would mean the cases never reached the endpoints.
    assert response.status_code != 401, response.text


def test_an_unknown_api_path_answers_the_json_error_shape(w: World) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(w.owner)
    response = client.patch("/api/v1/clients/not.a.uuid/", {}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


# Malformed values for a path parameter: not a UUID, a float, a path separator's neighbour, a
# NUL. None may reach a view as an id; each answers in the JSON error shape.
MALFORMED = ("0.5", "not-a-uuid", "..", "%00")


def _content_type(response: Any) -> str:
    headers = {key.lower(): value for key, value in response.headers.items()}
    value = headers.get("content-type", [""])
    return str(value[0] if isinstance(value, list) else value)


def _operations() -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize(
    "operation", _operations(), ids=lambda op: f"{op.method.upper()} {op.path}"
)
def test_every_operation_answers_options_and_malformed_ids_in_the_error_shape(
    operation: Any, owner_token: str, in_process_requests: None
) -> None:
    """Schemathesis' operations, called with OPTIONS (DRF's description) and, where the path
    has parameters, with each malformed value in each of them: never a server error, always
    JSON, and the error shape for a malformed id."""
    headers = {"Authorization": f"Bearer {owner_token}"}
    names = [p.name for p in operation.path_parameters]
    filler = dict.fromkeys(names, "00000000-0000-4000-8000-000000000000")
    described = operation.Case(method="OPTIONS", path_parameters=filler).call(headers=headers)
    assert described.status_code < 500, described.text
    assert _content_type(described).startswith("application/json"), described.headers
    for name in names:
        for value in MALFORMED:
            case = operation.Case(path_parameters={**filler, name: value})
            response = case.call(headers=headers)
            # 404, or 400 where the operation refuses its missing query first (a download
            # without `path`): either way the error shape, and no id is looked up.
            assert response.status_code in (400, 404), (name, value, response.text)
            assert _content_type(response) == "application/json"
            body = response.json()
            assert body["code"] == ("not_found" if response.status_code == 404 else "invalid")
            assert isinstance(body["detail"], str)
