"""`/admin/users`: the users of the registry, for system admins (others get the 403 page).

A page per user changes their role, disables or enables them (disabling ends their
sessions: the session check refuses a disabled user) and sets a new password. Every change
goes through the functions `PATCH /api/users/{name}` uses, with the same rules (the last
enabled admin stays one)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post

from api.auth.guards import api_admin
from api.manage import users as api_users
from api.web.account import role_name
from api.web.admin.problems import done_of, is_input_error, problem_of
from api.web.session import checked_form, signed_in
from api.web.signing_in import FORM_LIMIT
from api.web.templates import gettext, redirect, render
from domain.errors import RegistryError
from domain.identity import ROLES, USERNAME_MAX, USERNAME_MIN
from domain.passwords import MAX_LENGTH, MIN_LENGTH
from projections import users

PAGE = 100  # users per page of the list


def _fields(request: Request[Any, Any, Any]) -> dict[str, str]:
    _ = gettext(request)
    return {
        "username": _(
            "A username is {low} to {high} lowercase letters and digits, separated by single"
            " '.', '_' or '-' (and not a reserved name such as library)."
        ).format(low=USERNAME_MIN, high=USERNAME_MAX),
        "password": _("A password is {low} to {high} characters long.").format(
            low=MIN_LENGTH, high=MAX_LENGTH
        ),
    }


def _roles(request: Request[Any, Any, Any]) -> list[tuple[str, str]]:
    return [(role, role_name(request, role)) for role in ROLES]


async def _list(
    request: Request[Any, Any, Any], status: int = 200, **context: Any
) -> Response[Any]:
    services = request.app.state.services
    after = request.query_params.get("after", "")[:200].replace("\x00", "")
    rows = await services.query(users.page, after, PAGE + 1)
    context.setdefault("problem", None)
    context.setdefault("form", {"username": "", "role": "user"})
    _ = gettext(request)
    return render(
        request,
        "admin/users.html",
        status,
        rows=rows[:PAGE],
        next_after=rows[PAGE - 1].name if len(rows) > PAGE else None,
        after=after,
        roles=_roles(request),
        role_names=dict(_roles(request)),
        done=done_of(request, {"created": _("The user was created.")}),
        **context,
    )


@get("/admin/users", include_in_schema=False)
async def user_list(request: Request[Any, Any, Any]) -> Response[Any]:
    await signed_in(request)
    await api_admin(request)
    return await _list(request)


@post("/admin/users", status_code=303, include_in_schema=False, request_max_body_size=FORM_LIMIT)
async def create_user(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    admin = await api_admin(request)
    username, role = form.get("username", "").strip(), form.get("role", "user")
    try:
        await api_users.register(
            request.app.state.services, admin, username, form.get("password", ""), role
        )
    except RegistryError as exc:
        if not is_input_error(exc):
            raise
        problem = problem_of(request, exc, _fields(request))
        return await _list(
            request, exc.status, problem=problem, form={"username": username, "role": role}
        )
    return redirect(f"/admin/users/{quote(username)}?done=created")


async def _user(
    request: Request[Any, Any, Any], name: str, status: int = 200, problem: str | None = None
) -> Response[Any]:
    _ = gettext(request)
    row = await api_users.user_row(request.app.state.services, name)
    done = done_of(
        request,
        {
            "created": _("The user was created."),
            "role": _("The role was changed."),
            "disabled": _("The user was disabled: their sessions have ended."),
            "enabled": _("The user was enabled."),
            "password": _("The password was set: the user's sessions have ended."),
        },
    )
    return render(
        request,
        "admin/user.html",
        status,
        user=row,
        roles=_roles(request),
        role_label=role_name(request, row.role),
        problem=problem,
        done=done,
        min_password=MIN_LENGTH,
    )


@get("/admin/users/{name:str}", include_in_schema=False)
async def user_page(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    await signed_in(request)
    await api_admin(request)
    return await _user(request, name)


async def _change(
    request: Request[Any, Any, Any], name: str, done: str, **change: Any
) -> Response[Any]:
    """One change of a user through `api.manage.users.change`; the page again if refused."""
    admin = await api_admin(request)
    try:
        await api_users.change(request.app.state.services, admin, name, **change)
    except RegistryError as exc:
        if not is_input_error(exc) or exc.code == "USER_UNKNOWN":
            raise
        return await _user(request, name, exc.status, problem_of(request, exc, _fields(request)))
    return redirect(f"/admin/users/{quote(name)}?done={done}")


@post(
    "/admin/users/{name:str}/role",
    status_code=303,
    include_in_schema=False,
    request_max_body_size=FORM_LIMIT,
)
async def change_role(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    form = await checked_form(request)
    return await _change(request, name, "role", role=form.get("role", ""))


@post(
    "/admin/users/{name:str}/disabled",
    status_code=303,
    include_in_schema=False,
    request_max_body_size=FORM_LIMIT,
)
async def set_disabled(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    form = await checked_form(request)
    if form.get("disabled") not in ("true", "false"):
        await api_admin(request)
        _ = gettext(request)
        return await _user(request, name, 400, _("Choose to disable or to enable the user."))
    disabled = form["disabled"] == "true"
    return await _change(request, name, "disabled" if disabled else "enabled", disabled=disabled)


@post(
    "/admin/users/{name:str}/password",
    status_code=303,
    include_in_schema=False,
    request_max_body_size=FORM_LIMIT,
)
async def reset_password(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    form = await checked_form(request)
    return await _change(request, name, "password", password=form.get("password", ""))


route_handlers = [user_list, create_user, user_page, change_role, set_disabled, reset_password]
