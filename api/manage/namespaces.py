"""/api/namespaces: organisation namespaces, their visibility and members.

- `GET /api/namespaces` → the namespaces the caller may see (members, public ones; admins
  all), each with the caller's role;
- `POST /api/namespaces {"name","public"}` → 201; any signed-in user may create one and is
  its first owner (a name taken by a user or another namespace: 409 NAMESPACE_EXISTS;
  `library`, the namespace of names without a slash, only system admins);
- `GET /api/namespaces/{name}` → the namespace with its members;
- `PATCH /api/namespaces/{name} {"public"}` → owners and system admins;
- `DELETE /api/namespaces/{name}` → an empty organisation namespace (409 while it holds
  repositories; a personal one goes with its user): members go, robots are revoked;
- `POST /api/namespaces/{name}/members {"username","role"}`, `PATCH …/members/{username}
  {"role"}`, `DELETE …/members/{username}` → owners and system admins (a member may also
  leave); the last owner stays.

A namespace the caller may not see answers 404 NAMESPACE_UNKNOWN, as one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Request, Response, delete, get, patch, post

from api.auth.guards import ApiCaller, api_caller
from api.manage.bodies import MAX_BODY, json_object, text_field
from api.manage.envelope import Envelope, ok
from api.manage.openapi import documented_body, errors
from api.services import Services
from domain.errors import RegistryError
from domain.names import ROOT_NAMESPACE
from domain.namespaces import OWNER, check_member_role, check_namespace, is_valid_namespace
from projections import access_tokens, namespaces

MemberRole = Literal["owner", "maintainer", "developer", "reader"]
_TAGS = ["namespaces"]


# The shapes for the OpenAPI document (the handlers check bodies themselves).
class MemberOut(msgspec.Struct):
    username: str
    role: str
    added_at: datetime
    added_by: str


class NamespaceOut(msgspec.Struct):
    name: str
    public: bool
    personal: bool
    role: str | None  # the caller's role there (None: not a member)
    created_at: datetime
    created_by: str
    updated_at: datetime


class NamespaceDetail(NamespaceOut):
    members: list[MemberOut]


class Deleted(msgspec.Struct):
    name: str
    deleted: bool
    robots_revoked: int


class Removed(msgspec.Struct):
    namespace: str
    username: str
    removed: bool


class NewNamespace(msgspec.Struct):
    name: str
    public: bool | msgspec.UnsetType = msgspec.UNSET  # default false


class NamespaceChange(msgspec.Struct):
    public: bool


class NewMember(msgspec.Struct):
    username: str
    role: MemberRole


class MemberChange(msgspec.Struct):
    role: MemberRole


def _public(row: namespaces.NamespaceRow, role: str | None) -> dict[str, Any]:
    return {
        "name": row.name,
        "public": row.public,
        "personal": row.personal,
        "role": role,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "updated_at": row.updated_at,
    }


def _member(row: namespaces.MemberRow) -> dict[str, Any]:
    return {
        "username": row.username,
        "role": row.role,
        "added_at": row.added_at,
        "added_by": row.added_by,
    }


async def visible_namespace(
    request: Request[Any, Any, Any], name: str, manage: bool = False
) -> tuple[ApiCaller, namespaces.NamespaceRow, str | None]:
    """(caller, namespace, caller's role there) if the caller may see it — and, with
    `manage`, manage it (owners and system admins; 403 DENIED for other members)."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    found = (
        await services.query(namespaces.get, name, caller.actor)
        if is_valid_namespace(name)
        else None
    )
    if found is None or not (caller.is_admin or found[1] is not None or found[0].public):
        raise RegistryError("NAMESPACE_UNKNOWN", detail={"namespace": name})
    row, role = found
    if manage and not may_manage(caller, role):
        raise RegistryError("DENIED", "only the namespace's owners and system admins may")
    return caller, row, role


def may_manage(caller: ApiCaller, role: str | None) -> bool:
    """Whether a caller with `role` in a namespace may manage it (members, visibility,
    robots): its owners and system admins."""
    return caller.is_admin or role == OWNER


# What /api and the web UI's administration both do, from checked or raw values (each
# checks what it is given before it changes anything).


async def open_namespace(request: Request[Any, Any, Any], name: str, public: bool) -> None:
    """Create an organisation namespace owned by the caller."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    name = check_namespace(name)
    if name == ROOT_NAMESPACE and not caller.is_admin:  # whoever owned it would own `myapp`
        raise RegistryError("DENIED", f"only system admins may create {ROOT_NAMESPACE!r}")
    await services.command(
        services.registry.create_namespace, name, caller.actor, public, caller.caller
    )


async def set_visibility(request: Request[Any, Any, Any], name: str, public: bool) -> None:
    services: Services = request.app.state.services
    caller, _, _ = await visible_namespace(request, name, manage=True)
    await services.command(services.registry.set_namespace_public, name, public, caller.caller)


async def add_member_of(
    request: Request[Any, Any, Any], name: str, username: str, role: str
) -> None:
    """Add `username` with `role` (or give a member that role)."""
    services: Services = request.app.state.services
    role = check_member_role(role)
    caller, _, _ = await visible_namespace(request, name, manage=True)
    await services.command(services.registry.set_member, name, username, role, caller.caller)


async def change_member_of(
    request: Request[Any, Any, Any], name: str, username: str, role: str
) -> None:
    """Give a member another role (404 MEMBER_UNKNOWN for one who is not a member)."""
    services: Services = request.app.state.services
    role = check_member_role(role)
    caller, _, _ = await visible_namespace(request, name, manage=True)
    members = {m.username for m in await services.query(namespaces.members, name)}
    if username not in members:
        raise RegistryError("MEMBER_UNKNOWN", detail={"namespace": name, "username": username})
    await services.command(services.registry.set_member, name, username, role, caller.caller)


async def remove_member_of(request: Request[Any, Any, Any], name: str, username: str) -> None:
    """Remove a member (owners and system admins; every member may leave)."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    leaving = username == caller.actor
    caller, _, _ = await visible_namespace(request, name, manage=not leaving)
    await services.command(services.registry.remove_member, name, username, caller.caller)


def _public_flag(body: dict[str, Any]) -> bool:
    value = body.get("public", False)
    if not isinstance(value, bool):
        raise RegistryError("INVALID_INPUT", "'public' must be true or false", {"field": "public"})
    return value


def _only(body: dict[str, Any], *fields: str) -> None:
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise RegistryError("INVALID_INPUT", f"unknown fields: {', '.join(unknown)}")


async def _answer(request: Request[Any, Any, Any], name: str, status: int = 200) -> Response[Any]:
    services: Services = request.app.state.services
    _, row, role = await visible_namespace(request, name)
    found = _public(row, role)
    found["members"] = [_member(m) for m in await services.query(namespaces.members, name)]
    return ok(found, status=status)


@get("/api/namespaces", tags=_TAGS, responses=errors())
async def list_namespaces(
    request: Request[Any, Any, Any],
) -> Response[Envelope[list[NamespaceOut]]]:
    services: Services = request.app.state.services
    caller = await api_caller(request)
    rows = await services.query(namespaces.listing, caller.actor, caller.is_admin)
    return ok([_public(row, role) for row, role in rows])


@post(
    "/api/namespaces",
    status_code=201,
    request_max_body_size=MAX_BODY,
    tags=_TAGS,
    dependencies=documented_body(NewNamespace),
    responses=errors(409),
)
async def create_namespace(request: Request[Any, Any, Any]) -> Response[Envelope[NamespaceDetail]]:
    await api_caller(request)  # signed in before the body is read
    body = await json_object(request)
    _only(body, "name", "public")
    name = check_namespace(text_field(body, "name") or "")  # before the flag, as always
    await open_namespace(request, name, _public_flag(body))
    return await _answer(request, name, 201)


@get("/api/namespaces/{name:str}", tags=_TAGS, responses=errors(404))
async def show_namespace(
    request: Request[Any, Any, Any], name: str
) -> Response[Envelope[NamespaceDetail]]:
    return await _answer(request, name)


@patch(
    "/api/namespaces/{name:str}",
    request_max_body_size=MAX_BODY,
    tags=_TAGS,
    dependencies=documented_body(NamespaceChange),
    responses=errors(403, 404),
)
async def change_namespace(
    request: Request[Any, Any, Any], name: str
) -> Response[Envelope[NamespaceDetail]]:
    body = await json_object(request)
    _only(body, "public")
    if "public" not in body:
        raise RegistryError("INVALID_INPUT", "give 'public'", {"field": "public"})
    await set_visibility(request, name, _public_flag(body))
    return await _answer(request, name)


@delete(
    "/api/namespaces/{name:str}",
    status_code=200,
    tags=_TAGS,
    responses=errors(403, 404, 409),
)
async def delete_namespace(
    request: Request[Any, Any, Any], name: str
) -> Response[Envelope[Deleted]]:
    """An empty organisation namespace (owners and system admins): its members go, its robots
    are revoked; the name may be taken again."""
    services: Services = request.app.state.services
    caller, row, _ = await visible_namespace(request, name, manage=True)
    if row.personal:
        raise RegistryError("INVALID_INPUT", "a personal namespace goes with its user", status=409)
    if await services.query(namespaces.has_repositories, name):
        raise RegistryError(
            "INVALID_INPUT", "delete its repositories first", {"namespace": name}, status=409
        )
    robots = [r.token_id for r in await services.query(access_tokens.robots, name)]
    await services.command(services.registry.delete_namespace, name, robots, caller.caller)
    return ok({"name": name, "deleted": True, "robots_revoked": len(robots)})


@post(
    "/api/namespaces/{name:str}/members",
    status_code=201,
    request_max_body_size=MAX_BODY,
    tags=_TAGS,
    dependencies=documented_body(NewMember),
    responses=errors(403, 404, 409),
)
async def add_member(
    request: Request[Any, Any, Any], name: str
) -> Response[Envelope[NamespaceDetail]]:
    body = await json_object(request)
    _only(body, "username", "role")
    username = text_field(body, "username") or ""
    await add_member_of(request, name, username, text_field(body, "role") or "")
    return await _answer(request, name, 201)


@patch(
    "/api/namespaces/{name:str}/members/{username:str}",
    request_max_body_size=MAX_BODY,
    tags=_TAGS,
    dependencies=documented_body(MemberChange),
    responses=errors(403, 404, 409),
)
async def change_member(
    request: Request[Any, Any, Any], name: str, username: str
) -> Response[Envelope[NamespaceDetail]]:
    body = await json_object(request)
    _only(body, "role")
    await change_member_of(request, name, username, text_field(body, "role") or "")
    return await _answer(request, name)


@delete(
    "/api/namespaces/{name:str}/members/{username:str}",
    status_code=200,
    tags=_TAGS,
    responses=errors(403, 404, 409),
)
async def remove_member(
    request: Request[Any, Any, Any], name: str, username: str
) -> Response[Envelope[Removed]]:
    await remove_member_of(request, name, username)
    return ok({"namespace": name, "username": username, "removed": True})


route_handlers = [
    list_namespaces,
    create_namespace,
    show_namespace,
    change_namespace,
    delete_namespace,
    add_member,
    change_member,
    remove_member,
]
