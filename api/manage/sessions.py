"""/api sessions: `POST /api/auth/login` signs in with a username and password and answers
a bearer token for every other /api call; `POST /api/auth/logout` revokes that token.

Every sign-in attempt, good or bad, is recorded as a login event with method "api" (client
address, user agent; never the password). Wrong passwords, unknown and disabled users all
get the same 401. The token is an ES256 JWT signed with the registry's keys for the audience
`cyp-api` (see `api.auth.jwts.ApiTokens`); logging out records `token.revoked` (its jti,
subject and expiry), which every replica's guard (`api.auth.guards.api_caller`) consults.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Request, Response, post

from api.auth.guards import ApiCaller, ApiUnauthorized, api_caller
from api.auth.token_endpoint import Refused, sign_in
from api.manage.bodies import MAX_BODY, json_object, text_field
from api.manage.envelope import Envelope, ok
from api.manage.openapi import documented_body, errors
from api.services import Services
from domain.errors import RegistryError
from domain.throttle import retry_after_header

METHOD = "api"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# The shapes for the OpenAPI document (the handlers check bodies themselves).
class Credentials(msgspec.Struct):
    username: str
    password: str


class Session(msgspec.Struct):
    token: str  # send as `Authorization: Bearer <token>`
    expires_at: str


class SignedOut(msgspec.Struct):
    revoked: bool


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@post(
    "/api/auth/login",
    status_code=200,
    request_max_body_size=MAX_BODY,
    tags=["auth"],
    security=[{}],  # the one /api operation without a token
    dependencies=documented_body(Credentials),
    responses=errors(429),
)
async def login(request: Request[Any, Any, Any]) -> Response[Envelope[Session]]:
    services: Services = request.app.state.services
    body = await json_object(request)
    username = text_field(body, "username")
    password = text_field(body, "password")
    assert username is not None and password is not None
    try:
        found = await sign_in(request, username, password, METHOD, tokens=False)
    except Refused as exc:
        if exc.retry_after is None:
            raise ApiUnauthorized("invalid username or password", None) from None
        refused = RegistryError("TOOMANYREQUESTS", exc.message)
        refused.headers = {"Retry-After": retry_after_header(exc.retry_after)}  # type: ignore[attr-defined]
        raise refused from None
    token, claims = services.api_tokens.issue(found.principal.username)
    return ok({"token": token, "expires_at": iso(claims.expires)}, headers=NO_STORE)


@post("/api/auth/logout", status_code=200, tags=["auth"], responses=errors())
async def logout(request: Request[Any, Any, Any]) -> Response[Envelope[SignedOut]]:
    """Revoke the token this request carries: refused from the next request on, anywhere."""
    await end_session(request.app.state.services, await api_caller(request))
    return ok({"revoked": True})


async def end_session(services: Services, caller: ApiCaller) -> None:
    """Revoke a session token (of /api or the web UI's cookie): every replica refuses it."""
    claims = caller.claims
    await services.command(
        services.registry.revoke_token, claims.jti, claims.subject, claims.expires, caller.caller
    )
    services.api_tokens.revoked(claims)


route_handlers = [login, logout]
