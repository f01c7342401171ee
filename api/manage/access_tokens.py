"""/api/tokens (personal access tokens) and /api/namespaces/{name}/robots (robot accounts).

- `POST /api/tokens {"name","scopes":[{"namespace","actions"}],"expires_in_days",
  "description"}` → 201 with the token's `secret`, shown this once: the password for
  `docker login -u <you>`. `GET /api/tokens` lists the caller's own (never a secret);
  `DELETE /api/tokens/{id}` revokes one (its user or a system admin).
- `POST /api/namespaces/{name}/robots {"name","actions","expires_in_days","description"}` →
  201 with the robot's `username` (`robot$<namespace>+<name>`) and `secret`, shown once.
  `GET` lists them, `DELETE …/robots/{name}` revokes one: the namespace's owners and system
  admins only. Only the robots of the namespace as it exists now: none of a deleted one of
  the same name (they were revoked with it and never sign in again).

Expiry: `expires_in_days` (1 to 3650, default 90). A revoked or expired token signs in no
more, nor does a robot of a disabled user's personal namespace (as the user's own tokens);
bearer tokens /token issued with it before live out their few minutes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post

from api.auth.guards import ApiCaller, api_caller
from api.manage.bodies import MAX_BODY, json_object, text_field
from api.manage.envelope import Envelope, ok
from api.manage.namespaces import visible_namespace
from api.manage.openapi import documented_body, errors
from api.services import Services
from domain.access_tokens import (
    PERSONAL,
    ROBOT,
    check_actions,
    check_days,
    check_description,
    check_label,
    check_scopes,
    new_personal_secret,
    new_robot_secret,
    parse_robot_name,
    robot_name,
)
from domain.errors import RegistryError
from projections import access_tokens

DEFAULT_DAYS = 90
Action = Literal["pull", "push", "delete"]


# The shapes for the OpenAPI document (the handlers check bodies themselves).
class TokenScope(msgspec.Struct):
    namespace: str  # a namespace, or "*" (alone) for any
    actions: list[Action]


class NewToken(msgspec.Struct):
    name: str
    scopes: list[TokenScope]
    expires_in_days: int | msgspec.UnsetType = msgspec.UNSET  # 1 to 3650, default 90
    description: str | msgspec.UnsetType = msgspec.UNSET


class NewRobot(msgspec.Struct):
    name: str
    actions: list[Action]
    expires_in_days: int | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET


class _Credential(msgspec.Struct):
    id: str
    name: str
    description: str
    expires_at: datetime
    expired: bool
    created_at: datetime
    created_by: str
    revoked: bool
    revoked_at: datetime | None


class TokenOut(_Credential):
    scopes: list[TokenScope]


class IssuedToken(TokenOut):
    secret: str  # shown this once


class RobotOut(_Credential):
    username: str  # robot$<namespace>+<name>: the docker login username
    namespace: str
    actions: list[Action]


class IssuedRobot(RobotOut):
    secret: str  # shown this once


_TOKEN_FIELDS = {"name", "scopes", "expires_in_days", "description"}
_ROBOT_FIELDS = {"name", "actions", "expires_in_days", "description"}


def described(row: access_tokens.TokenRow) -> dict[str, Any]:
    """A token or robot as /api answers it (never its secret)."""
    now = datetime.now(UTC)
    found: dict[str, Any] = {
        "id": row.token_id,
        "name": row.name,
        "description": row.description,
        "expires_at": row.expires_at,
        "expired": row.expires_at <= now,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "revoked": row.revoked_at is not None,
        "revoked_at": row.revoked_at,
    }
    if row.token_type == ROBOT:
        found["username"] = row.principal
        found["namespace"] = row.namespace
        found["actions"] = row.scopes.get(row.namespace, [])
    else:
        found["scopes"] = [{"namespace": ns, "actions": a} for ns, a in row.scopes.items()]
    return found


def _fields(body: dict[str, Any], allowed: set[str]) -> tuple[str, str, int]:
    """(name, description, expires_at) of a request to issue a token or a robot."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RegistryError("INVALID_INPUT", f"unknown fields: {', '.join(unknown)}")
    name = text_field(body, "name") or ""
    return credential_fields(
        name, body.get("description", ""), body.get("expires_in_days", DEFAULT_DAYS)
    )


def credential_fields(name: str, description: Any, days: Any) -> tuple[str, str, int]:
    """(name, description, expires_at) of a token or robot to issue, checked."""
    name = check_label(name)
    description = check_description(description)
    days = check_days(days)
    return name, description, int(time.time()) + days * 86400


def _issued(row: access_tokens.TokenRow, secret: str) -> Response[Any]:
    return ok({**described(row), "secret": secret}, status=201)


# What /api and the web UI's token pages both do (each checks what it is given first).


async def issue_personal(
    services: Services,
    caller: ApiCaller,
    name: str,
    description: str,
    expires_at: int,
    scopes: Any,
) -> tuple[access_tokens.TokenRow, str]:
    """Issue a personal access token of the caller: (the token, its secret, shown once)."""
    scopes = check_scopes(scopes)
    token_id, secret = new_personal_secret()
    await services.command(
        services.registry.issue_access_token,
        token_id,
        PERSONAL,
        caller.actor,
        "",
        name,
        description,
        scopes,
        expires_at,
        secret,
        caller.caller,
    )
    return await services.query(access_tokens.get, token_id), secret


async def issue_robot(
    request: Request[Any, Any, Any],
    namespace: str,
    label: str,
    description: str,
    expires_at: int,
    actions: Any,
) -> tuple[access_tokens.TokenRow, str]:
    """Create a robot of a namespace the caller manages: (the robot, its secret, once)."""
    services: Services = request.app.state.services
    actions = check_actions(actions)
    caller, _, _ = await visible_namespace(request, namespace, manage=True)
    username, secret = robot_name(namespace, label), new_robot_secret()
    await services.command(
        services.registry.issue_access_token,
        username,
        ROBOT,
        username,
        namespace,
        label,
        description,
        {namespace: actions},
        expires_at,
        secret,
        caller.caller,
    )
    return await services.query(access_tokens.get, username), secret


async def personal_token(
    services: Services, caller: ApiCaller, token_id: str
) -> access_tokens.TokenRow:
    """A personal token the caller may revoke (theirs; any, for a system admin)."""
    # (Postgres text holds no NUL: such an id is nobody's, not a database error)
    sane = len(token_id) <= 64 and "\x00" not in token_id
    row = await services.query(access_tokens.get, token_id) if sane else None
    if row is None or row.token_type != PERSONAL:
        raise RegistryError("TOKEN_UNKNOWN", detail={"id": token_id})
    if row.principal != caller.actor and not caller.is_admin:  # nobody else's exists for them
        raise RegistryError("TOKEN_UNKNOWN", detail={"id": token_id})
    return row


async def robot_of(
    request: Request[Any, Any, Any], namespace: str, robot: str
) -> tuple[ApiCaller, access_tokens.TokenRow]:
    """A robot (by its name or `robot$…` username) of a namespace the caller manages."""
    services: Services = request.app.state.services
    caller, _, _ = await visible_namespace(request, namespace, manage=True)
    username = robot if robot.startswith("robot$") else robot_name(namespace, robot)
    found = parse_robot_name(username) is not None  # no other name is any robot's
    row = await services.query(access_tokens.robot, namespace, username) if found else None
    if row is None:
        raise RegistryError("TOKEN_UNKNOWN", detail={"robot": robot})
    return caller, row


async def revoke(services: Services, token_id: str, caller: ApiCaller) -> access_tokens.TokenRow:
    """Revoke, then the token as it is now."""
    await services.command(services.registry.revoke_access_token, token_id, caller.caller)
    return await services.query(access_tokens.get, token_id)


@post(
    "/api/tokens",
    status_code=201,
    request_max_body_size=MAX_BODY,
    tags=["tokens"],
    dependencies=documented_body(NewToken),
    responses=errors(),
)
async def issue_token(request: Request[Any, Any, Any]) -> Response[Envelope[IssuedToken]]:
    services: Services = request.app.state.services
    caller = await api_caller(request)
    body = await json_object(request)
    name, description, expires_at = _fields(body, _TOKEN_FIELDS)
    scopes = body.get("scopes")
    return _issued(*await issue_personal(services, caller, name, description, expires_at, scopes))


@get("/api/tokens", tags=["tokens"], responses=errors())
async def list_tokens(request: Request[Any, Any, Any]) -> Response[Envelope[list[TokenOut]]]:
    services: Services = request.app.state.services
    caller = await api_caller(request)
    return ok([described(row) for row in await services.query(access_tokens.of_user, caller.actor)])


@delete("/api/tokens/{token_id:str}", status_code=200, tags=["tokens"], responses=errors(404))
async def revoke_token(
    request: Request[Any, Any, Any], token_id: str
) -> Response[Envelope[TokenOut]]:
    services: Services = request.app.state.services
    caller = await api_caller(request)
    row = await personal_token(services, caller, token_id)
    return ok(described(await revoke(services, row.token_id, caller)))


@post(
    "/api/namespaces/{name:str}/robots",
    status_code=201,
    request_max_body_size=MAX_BODY,
    tags=["robots"],
    dependencies=documented_body(NewRobot),
    responses=errors(403, 404, 409),
)
async def create_robot(
    request: Request[Any, Any, Any], name: str
) -> Response[Envelope[IssuedRobot]]:
    body = await json_object(request)
    label, description, expires_at = _fields(body, _ROBOT_FIELDS)
    actions = body.get("actions")
    return _issued(*await issue_robot(request, name, label, description, expires_at, actions))


@get("/api/namespaces/{name:str}/robots", tags=["robots"], responses=errors(403, 404))
async def list_robots(
    request: Request[Any, Any, Any], name: str
) -> Response[Envelope[list[RobotOut]]]:
    services: Services = request.app.state.services
    await visible_namespace(request, name, manage=True)
    return ok([described(row) for row in await services.query(access_tokens.robots, name)])


@delete(
    "/api/namespaces/{name:str}/robots/{robot:str}",
    status_code=200,
    tags=["robots"],
    responses=errors(403, 404),
)
async def revoke_robot(
    request: Request[Any, Any, Any], name: str, robot: str
) -> Response[Envelope[RobotOut]]:
    services: Services = request.app.state.services
    caller, row = await robot_of(request, name, robot)
    return ok(described(await revoke(services, row.token_id, caller)))


route_handlers = [
    issue_token,
    list_tokens,
    revoke_token,
    create_robot,
    list_robots,
    revoke_robot,
]
