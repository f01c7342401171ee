"""The OpenAPI document of /api (served at /api/openapi.json and /api/openapi.yaml,
browsable at /api/docs: `api.manage.docs`): its configuration, the documented error
answers of every operation, documented request bodies."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme, Tag

from api.manage.docs import render_plugins
from api.manage.envelope import ErrorEnvelope

SECURITY = [{"BearerToken": []}]
DESCRIPTIONS = {
    400: "Invalid input: a malformed parameter, cursor or body (code INVALID_INPUT)",
    401: "No valid /api token: sign in with POST /api/auth/login (code UNAUTHORIZED)",
    403: "Signed in, but not allowed to do this (code DENIED)",
    404: "Unknown, or not visible to the caller (names the caller may not read never leak)",
    409: "Conflicts with the current state",
    429: "Too many attempts or concurrent updates; retry after Retry-After seconds",
    503: "A backing service (the database) is unavailable; retry",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented error answers of an operation: 400, 401 and 503 always (any request
    may be malformed, unauthenticated or meet a database outage), plus `statuses`."""
    return {
        status: ResponseSpec(
            data_container=ErrorEnvelope,
            description=DESCRIPTIONS[status],
            generate_examples=False,
        )
        for status in sorted({400, 401, 503, *statuses})
    }


def documented_body(struct: type[msgspec.Struct]) -> dict[str, Provide]:
    """Document `struct` as the JSON request body of a handler that reads its body itself
    (json_object + its own checks, with our error codes): Litestar's OpenAPI takes a
    dependency's `data` parameter as the body; the dependency is never resolved, because no
    handler parameter asks for it."""

    def body(data: Any) -> None:  # pragma: no cover - documentation only
        raise AssertionError("documentation only")

    body.__annotations__["data"] = struct
    return {"_documented_body": Provide(body, sync_to_thread=False)}


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="CYP Registry management API",
        version=version,
        description=(
            "The /api surface of CYP Registry. Every operation but POST /api/auth/login needs"
            " `Authorization: Bearer <token>` with the token that login answers. Every answer"
            ' is the envelope {"success":true,"data":…} or {"success":false,"error":'
            '{"code":…,"message":…}}. The OCI distribution API (/v2) is specified by the OCI'
            " Distribution Spec v1.1 and is not described here."
        ),
        path="/api",
        render_plugins=render_plugins(),
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="the token of POST /api/auth/login",
                )
            }
        ),
        security=SECURITY,
        tags=[
            Tag(name="auth", description="sign in and out"),
            Tag(name="users", description="user management (system admins)"),
            Tag(name="namespaces", description="namespaces, visibility and members with roles"),
            Tag(name="tokens", description="personal access tokens (docker login passwords)"),
            Tag(name="robots", description="robot accounts of a namespace"),
            Tag(name="images", description="tagged images: list, search, details, delete"),
            Tag(name="repositories", description="repositories: list, delete"),
            Tag(name="history", description="the audit log, and live as Server-Sent Events"),
            Tag(name="system", description="version, uptime, storage, lag, health"),
        ],
        create_examples=False,
    )


API_ERRORS = (400, 401, 403, 404, 409, 429, 503)


def complete(handlers: list[Any]) -> list[Any]:
    """Document the error answers every /api operation may give (the envelope), also for
    handlers that declare none: the document then covers every status /api answers."""
    for handler in handlers:
        paths = getattr(handler, "paths", ())
        if any(path.startswith("/api/") for path in paths):
            handler.responses = {**errors(*API_ERRORS), **(handler.responses or {})}
    return handlers
