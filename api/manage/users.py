"""/api/users: user management for system admins (403 DENIED for other users).

- `POST /api/users {"username","password","role"}` → 201 with the user;
- `GET /api/users` → every user (name, role, disabled, created_at, updated_at);
- `GET /api/users/{name}` → one user;
- `PATCH /api/users/{name}` with any of `{"password","role","disabled"}`;
- `DELETE /api/users/{name}` → disables the user (a soft delete: the name stays taken, the
  history keeps them, and `PATCH {"disabled": false}` brings them back).

Answers never carry a password or its hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Request, Response, delete, get, patch, post

from api.auth.guards import ApiCaller, api_admin
from api.manage.bodies import MAX_BODY, json_object, text_field
from api.manage.envelope import Envelope, ok
from api.manage.openapi import documented_body, errors
from api.services import Services
from domain.errors import RegistryError
from domain.identity import check_role, is_valid_username
from domain.passwords import check_password
from projections import users

_PATCHABLE = {"password", "role", "disabled"}
Role = Literal["admin", "user"]


# The shapes for the OpenAPI document (the handlers check bodies themselves).
class UserOut(msgspec.Struct):
    name: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


class NewUser(msgspec.Struct):
    username: str
    password: str  # at least 8 characters
    role: Role | msgspec.UnsetType = msgspec.UNSET  # default: user


class UserChange(msgspec.Struct):
    """Any of the three."""

    password: str | msgspec.UnsetType = msgspec.UNSET
    role: Role | msgspec.UnsetType = msgspec.UNSET
    disabled: bool | msgspec.UnsetType = msgspec.UNSET


def _public(row: users.UserRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "role": row.role,
        "disabled": row.disabled,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class LastAdminStays(RegistryError):
    """The last enabled system admin may be neither demoted nor disabled."""

    def __init__(self, username: str) -> None:
        super().__init__(
            "INVALID_INPUT",
            "the last enabled system admin stays: make another user admin first",
            {"username": username},
            status=409,
        )


async def user_row(services: Services, name: str) -> users.UserRow:
    """The user `name`; 404 USER_UNKNOWN if there is none."""
    row = await services.query(users.get, name) if is_valid_username(name) else None
    if row is None:
        raise RegistryError("USER_UNKNOWN", detail={"username": name})
    return row


async def keep_an_admin(services: Services, row: users.UserRow) -> None:
    """Refuse to demote or disable the last enabled system admin: nobody could manage the
    registry over the API any more (the `cyp-registry user` commands still can)."""
    if row.role == "admin" and not row.disabled:
        if await services.query(users.other_admins, row.name) == 0:
            raise LastAdminStays(row.name)


async def register(
    services: Services, admin: ApiCaller, username: str, password: str, role: str | None
) -> users.UserRow:
    """Register a user (as /api and the web UI's administration do): every field checked
    before anything is stored."""
    password = check_password(password)
    role = check_role(role or "user")
    await services.command(services.registry.register_user, username, password, role, admin.caller)
    return await user_row(services, username)


async def change(
    services: Services,
    admin: ApiCaller,
    name: str,
    password: str | None = None,
    role: str | None = None,
    disabled: bool | None = None,
) -> users.UserRow:
    """Change any of a user's password, role and disabled flag (None: leave it): all of
    them checked before any is changed; the last enabled admin stays one."""
    password = check_password(password) if password is not None else None
    role = check_role(role) if role is not None else None
    row = await user_row(services, name)
    if role == "user" or disabled is True:
        await keep_an_admin(services, row)
    registry, caller = services.registry, admin.caller
    if password is not None:
        await services.command(registry.change_password, name, password, caller)
    if role is not None:
        await services.command(registry.change_role, name, role, caller)
    if disabled is True:
        await services.command(registry.disable_user, name, caller)
    elif disabled is False:
        await services.command(registry.enable_user, name, caller)
    return await user_row(services, name)


@post(
    "/api/users",
    status_code=201,
    request_max_body_size=MAX_BODY,
    tags=["users"],
    dependencies=documented_body(NewUser),
    responses=errors(403, 409),
)
async def create_user(request: Request[Any, Any, Any]) -> Response[Envelope[UserOut]]:
    services: Services = request.app.state.services
    admin = await api_admin(request)
    body = await json_object(request)
    username = text_field(body, "username")
    password = check_password(text_field(body, "password"))  # checked in this order
    role = text_field(body, "role", required=False)
    row = await register(services, admin, username, password, role)  # type: ignore[arg-type]
    return ok(_public(row), status=201)


@get("/api/users", tags=["users"], responses=errors(403))
async def list_users(request: Request[Any, Any, Any]) -> Response[Envelope[list[UserOut]]]:
    services: Services = request.app.state.services
    await api_admin(request)
    rows = await services.query(users.page)
    return ok([_public(row) for row in rows])


@get("/api/users/{name:str}", tags=["users"], responses=errors(403, 404))
async def show_user(request: Request[Any, Any, Any], name: str) -> Response[Envelope[UserOut]]:
    services: Services = request.app.state.services
    await api_admin(request)
    return ok(_public(await user_row(services, name)))


@patch(
    "/api/users/{name:str}",
    request_max_body_size=MAX_BODY,
    tags=["users"],
    dependencies=documented_body(UserChange),
    responses=errors(403, 404, 429),
)
async def change_user(request: Request[Any, Any, Any], name: str) -> Response[Envelope[UserOut]]:
    services: Services = request.app.state.services
    admin = await api_admin(request)
    body = await json_object(request)
    unknown = sorted(set(body) - _PATCHABLE)
    if unknown or not body:
        raise RegistryError(
            "INVALID_INPUT",
            f"give any of {', '.join(sorted(_PATCHABLE))}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
        )
    # Check everything before changing anything.
    password = check_password(body["password"]) if "password" in body else None
    role = check_role(body["role"]) if "role" in body else None
    disabled = body.get("disabled")
    if "disabled" in body and not isinstance(disabled, bool):
        raise RegistryError(
            "INVALID_INPUT", "'disabled' must be true or false", {"field": "disabled"}
        )
    return ok(_public(await change(services, admin, name, password, role, disabled)))


@delete("/api/users/{name:str}", status_code=200, tags=["users"], responses=errors(403, 404))
async def delete_user(request: Request[Any, Any, Any], name: str) -> Response[Envelope[UserOut]]:
    """A soft delete: the user is disabled (see the module's docstring)."""
    services: Services = request.app.state.services
    admin = await api_admin(request)
    await keep_an_admin(services, await user_row(services, name))
    await services.command(services.registry.disable_user, name, admin.caller)
    return ok(_public(await user_row(services, name)))


route_handlers = [create_user, list_users, show_user, change_user, delete_user]
