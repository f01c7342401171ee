"""`/admin/namespaces`: the namespaces a user may see, as `GET /api/namespaces` lists them
(every one for a system admin), creating one, and a page per namespace with its visibility
and members. Owners and system admins change them; other members see them and may leave.
Every change goes through the functions the /api namespace handlers use."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post

from api.auth.guards import api_caller
from api.manage import namespaces as api_namespaces
from api.web.admin.problems import done_of, is_input_error, problem_of
from api.web.session import checked_form, signed_in
from api.web.signing_in import FORM_LIMIT
from api.web.templates import gettext, redirect, render
from domain.errors import RegistryError
from domain.namespaces import NAMESPACE_MAX
from projections import namespaces

PAGE = 100  # namespaces per page of the list
_FORM = {"status_code": 303, "include_in_schema": False, "request_max_body_size": FORM_LIMIT}


def _fields(request: Request[Any, Any, Any]) -> dict[str, str]:
    _ = gettext(request)
    return {
        "name": _(
            "A namespace name is 1 to {high} lowercase letters and digits, separated by '.',"
            " '_', '__' or dashes."
        ).format(high=NAMESPACE_MAX),
        "public": _("Choose public or private."),
    }


async def _list(
    request: Request[Any, Any, Any], status: int = 200, **context: Any
) -> Response[Any]:
    services = request.app.state.services
    caller = await api_caller(request)
    after = request.query_params.get("after", "")[:200].replace("\x00", "")
    rows = await services.query(namespaces.listing, caller.actor, caller.is_admin, after, PAGE + 1)
    context.setdefault("problem", None)
    context.setdefault("form", {"name": "", "public": False})
    return render(
        request,
        "admin/namespaces.html",
        status,
        rows=rows[:PAGE],
        after=after,
        next_after=rows[PAGE - 1][0].name if len(rows) > PAGE else None,
        **context,
    )


@get("/admin/namespaces", include_in_schema=False)
async def namespace_list(request: Request[Any, Any, Any]) -> Response[Any]:
    await signed_in(request)
    return await _list(request)


@post("/admin/namespaces", **_FORM)
async def create_namespace(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    name, public = form.get("name", "").strip(), form.get("public") == "true"
    try:
        await api_namespaces.open_namespace(request, name, public)
    except RegistryError as exc:
        if not is_input_error(exc):
            raise
        problem = problem_of(request, exc, _fields(request))
        return await _list(
            request, exc.status, problem=problem, form={"name": name, "public": public}
        )
    return redirect(f"/admin/namespaces/{quote(name)}?done=created")


async def _namespace(
    request: Request[Any, Any, Any],
    name: str,
    status: int = 200,
    problem: str | None = None,
    form: dict[str, str] | None = None,
) -> Response[Any]:
    services = request.app.state.services
    caller, row, role = await api_namespaces.visible_namespace(request, name)
    _ = gettext(request)
    done = done_of(
        request,
        {
            "created": _("The namespace was created: you are its owner."),
            "public": _("The namespace is public now: every signed-in user may pull from it."),
            "private": _("The namespace is private now: only its members may pull from it."),
            "added": _("The member was added."),
            "changed": _("The member's role was changed."),
            "removed": _("The member was removed."),
        },
    )
    return render(
        request,
        "admin/namespace.html",
        status,
        namespace=row,
        role=role,
        manage=api_namespaces.may_manage(caller, role),
        members=await services.query(namespaces.members, name),
        problem=problem,
        done=done,
        form=form or {"username": "", "role": "developer"},
    )


@get("/admin/namespaces/{name:str}", include_in_schema=False)
async def namespace_page(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    await signed_in(request)
    return await _namespace(request, name)


async def _refused(
    request: Request[Any, Any, Any],
    name: str,
    exc: RegistryError,
    form: dict[str, str] | None = None,
) -> Response[Any]:
    """The namespace's page again with what was wrong; refusals without a form to show
    again (not allowed, no such namespace) are the error page."""
    if not is_input_error(exc):
        raise exc
    return await _namespace(
        request, name, exc.status, problem_of(request, exc, _fields(request)), form
    )


@post("/admin/namespaces/{name:str}/visibility", **_FORM)
async def set_visibility(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    form = await checked_form(request)
    if form.get("public") not in ("true", "false"):
        return await _refused(
            request, name, RegistryError("INVALID_INPUT", "public or not", {"field": "public"})
        )
    public = form["public"] == "true"
    try:
        await api_namespaces.set_visibility(request, name, public)
    except RegistryError as exc:
        return await _refused(request, name, exc)
    return redirect(f"/admin/namespaces/{quote(name)}?done={'public' if public else 'private'}")


@post("/admin/namespaces/{name:str}/members", **_FORM)
async def add_member(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    form = await checked_form(request)
    username, role = form.get("username", "").strip(), form.get("role", "")
    try:
        await api_namespaces.add_member_of(request, name, username, role)
    except RegistryError as exc:
        return await _refused(request, name, exc, {"username": username, "role": role})
    return redirect(f"/admin/namespaces/{quote(name)}?done=added")


@post("/admin/namespaces/{name:str}/members/{username:str}/role", **_FORM)
async def change_member(request: Request[Any, Any, Any], name: str, username: str) -> Response[Any]:
    form = await checked_form(request)
    try:
        await api_namespaces.change_member_of(request, name, username, form.get("role", ""))
    except RegistryError as exc:
        return await _refused(request, name, exc)
    return redirect(f"/admin/namespaces/{quote(name)}?done=changed")


@post("/admin/namespaces/{name:str}/members/{username:str}/remove", **_FORM)
async def remove_member(request: Request[Any, Any, Any], name: str, username: str) -> Response[Any]:
    await checked_form(request)
    caller = await api_caller(request)
    try:
        await api_namespaces.remove_member_of(request, name, username)
    except RegistryError as exc:
        return await _refused(request, name, exc)
    if username == caller.actor and not caller.is_admin:
        return redirect("/admin/namespaces")  # left: the page may be out of sight now
    return redirect(f"/admin/namespaces/{quote(name)}?done=removed")


route_handlers = [
    namespace_list,
    create_namespace,
    namespace_page,
    set_visibility,
    add_member,
    change_member,
    remove_member,
]
