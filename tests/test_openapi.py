"""The OpenAPI document of /api, checked against the running registry with schemathesis:
every operation, with generated valid and invalid input, never answers 5xx, and every answer
(status, content type, body) is one the document describes."""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.apiclient import call, token_of
from tests.auth import ADMIN
from tests.world import build

EXAMPLES = 25  # per operation and mode
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzer(module_registry) -> str:
    """An /api token of a system admin of its own: what the generated requests carry."""
    world = build(module_registry)  # something to list, show and delete
    name, password = f"fuzzer-{uuid.uuid4().hex[:6]}", "fuzzer-password"
    answer = call(
        world.url,
        "POST",
        "/api/users",
        world.admin,
        json={"username": name, "password": password, "role": "admin"},
    )
    assert answer.status_code == 201, answer.text
    return token_of(module_registry.url, name, password)


@pytest.fixture(scope="module")
def api_schema(module_registry):
    schema = schemathesis.openapi.from_url(f"{module_registry.url}/api/openapi.json")
    return (
        schema.include(path_regex="^/api/")
        # signing out would end the token every other request carries; a stream never ends
        .exclude(method="POST", path="/api/auth/logout")
        .exclude(path="/api/history/stream")
    )


def test_the_document_describes_api(module_registry) -> None:
    document = call(module_registry.url, "GET", "/api/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/auth/login",
        "/api/users",
        "/api/users/{name}",
        "/api/images",
        "/api/images/search",
        "/api/images/{rest}",
        "/api/repositories",
        "/api/repositories/{name}",
        "/api/history",
        "/api/history/stream",
        "/api/system/info",
    ):
        assert path in paths, path
    assert not any(path.startswith("/v2") for path in paths)
    assert document["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    login = paths["/api/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]
    assert login["security"] == [{}]  # signing in needs no token
    listing = paths["/api/images"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"sort", "limit", "cursor", "namespace"}
    assert "ErrorEnvelope" in str(listing["responses"]["400"])
    assert call(module_registry.url, "GET", "/api/docs").status_code == 200


# schemathesis' own pytest loader (from_fixture) does not run on pytest 9: each operation's
# strategy is driven by hypothesis here instead.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_document(api_schema, fuzzer, mode) -> None:
    headers = {"Authorization": f"Bearer {fuzzer}"}
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, ExceptionGroup) as exc:  # every operation's failure is reported
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_admin_still_signs_in(module_registry) -> None:
    """The generated requests changed users at random: never the admin."""
    assert token_of(module_registry.url, *ADMIN)
