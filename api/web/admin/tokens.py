"""`/tokens`: the signed-in user's personal access tokens, and the robot accounts of the
namespaces they manage (`/tokens/robots/{namespace}`), as /api/tokens and
/api/namespaces/{name}/robots do it — the same functions, the same rules.

A new token's or robot's secret is on the answer to the form that made it, once: never in a
URL (the access log writes those), a redirect, a later page or a log line; every page is
`Cache-Control: no-store`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post

from api.auth.guards import api_caller
from api.manage import access_tokens as api_tokens
from api.manage import namespaces as api_namespaces
from api.web.admin.problems import done_of, field_of, is_input_error, problem_of
from api.web.session import checked_form, signed_in
from api.web.signing_in import FORM_LIMIT
from api.web.templates import gettext, redirect, render
from domain.access_tokens import ANY_NAMESPACE, MAX_DAYS, ROBOT
from domain.errors import RegistryError
from domain.policy import REPOSITORY_ACTIONS
from projections import access_tokens, namespaces

OWNED = 50  # namespaces whose robots /tokens links to (the rest: from their pages)
_FORM = {"status_code": 303, "include_in_schema": False, "request_max_body_size": FORM_LIMIT}
_DAYS = re.compile(r"[0-9]{1,6}")
_SEPARATORS = re.compile(r"[\s,]+")


def _fields(request: Request[Any, Any, Any]) -> dict[str, str]:
    _ = gettext(request)
    return {
        "name": _(
            "A name is 1 to 64 lowercase letters and digits, separated by single '.', '_' or '-'."
        ),
        "description": _("A description is at most 512 characters."),
        "expires_in_days": _("The expiry is a whole number of days, 1 to {high}.").format(
            high=MAX_DAYS
        ),
        "actions": _("Choose at least one action: pull, push or delete."),
        "scopes": _(
            "Name up to 64 namespaces, separated by commas or spaces, each once — or * alone"
            " for every namespace you may use."
        ),
    }


def _blank(actions: tuple[str, ...] = ("pull",)) -> dict[str, Any]:
    return {
        "name": "",
        "description": "",
        "namespaces": ANY_NAMESPACE,
        "days": "90",
        "actions": actions,
    }


def _submitted(form: dict[str, str]) -> dict[str, Any]:
    """What the form sent, to show again if refused (never a secret: forms here hold none)."""
    return {
        "name": form.get("name", "").strip(),
        "description": form.get("description", ""),
        "namespaces": form.get("namespaces", ""),
        "days": form.get("expires_in_days", "").strip(),
        "actions": tuple(a for a in REPOSITORY_ACTIONS if form.get(f"action_{a}")),
    }


def _credential(form: dict[str, Any]) -> tuple[str, str, int]:
    """(name, description, expires_at), checked as /api checks them."""
    days: Any = int(form["days"]) if _DAYS.fullmatch(form["days"]) else form["days"]
    return api_tokens.credential_fields(form["name"], form["description"], days)


async def _tokens(
    request: Request[Any, Any, Any], status: int = 200, **context: Any
) -> Response[Any]:
    services = request.app.state.services
    caller = await api_caller(request)
    rows = await services.query(access_tokens.of_user, caller.actor)
    owned = await services.query(namespaces.owned, caller.actor, OWNED + 1)
    _ = gettext(request)
    context.setdefault("problem", None)
    context.setdefault("form", _blank())
    return render(
        request,
        "admin/tokens.html",
        status,
        tokens=[api_tokens.described(row) for row in reversed(rows)],
        owned=owned[:OWNED],
        more_owned=len(owned) > OWNED,
        done=done_of(request, {"revoked": _("The token was revoked: it signs in no more.")}),
        max_days=MAX_DAYS,
        **context,
    )


@get("/tokens", include_in_schema=False)
async def token_list(request: Request[Any, Any, Any]) -> Response[Any]:
    await signed_in(request)
    return await _tokens(request)


def _secret_page(
    request: Request[Any, Any, Any], row: access_tokens.TokenRow, secret: str
) -> Response[Any]:
    """The one page that shows a secret: the answer to the form that made it (201)."""
    caller = request.scope["cyp_api_caller"]
    token = api_tokens.described(row)
    robot = row.token_type == ROBOT
    return render(
        request,
        "admin/secret.html",
        201,
        token=token,
        robot=robot,
        login_as=row.principal if robot else caller.actor,
        secret=secret,
        back=f"/tokens/robots/{quote(row.namespace)}" if robot else "/tokens",
    )


@post("/tokens", **_FORM)
async def create_token(request: Request[Any, Any, Any]) -> Response[Any]:
    form = _submitted(await checked_form(request))
    caller = await api_caller(request)
    wanted = [n for n in _SEPARATORS.split(form["namespaces"]) if n]
    scopes = [{"namespace": n, "actions": list(form["actions"])} for n in wanted]
    try:
        name, description, expires_at = _credential(form)
        row, secret = await api_tokens.issue_personal(
            request.app.state.services, caller, name, description, expires_at, scopes
        )
    except RegistryError as exc:
        if not is_input_error(exc):
            raise
        fields = _fields(request)
        if field_of(exc) == "scopes" and wanted and not form["actions"]:
            problem = fields["actions"]  # no action chosen: the scopes' refusal, said plainly
        else:
            problem = problem_of(request, exc, fields)
        return await _tokens(request, exc.status, problem=problem, form=form)
    return _secret_page(request, row, secret)


@post("/tokens/{token_id:str}/revoke", **_FORM)
async def revoke_token(request: Request[Any, Any, Any], token_id: str) -> Response[Any]:
    await checked_form(request)
    caller = await api_caller(request)
    services = request.app.state.services
    row = await api_tokens.personal_token(services, caller, token_id)
    await api_tokens.revoke(services, row.token_id, caller)
    return redirect("/tokens?done=revoked")


async def _robots(
    request: Request[Any, Any, Any], name: str, status: int = 200, **context: Any
) -> Response[Any]:
    services = request.app.state.services
    _caller, row, _role = await api_namespaces.visible_namespace(request, name, manage=True)
    robots = await services.query(access_tokens.robots, name)
    _ = gettext(request)
    context.setdefault("problem", None)
    context.setdefault("form", _blank(("pull",)))
    return render(
        request,
        "admin/robots.html",
        status,
        namespace=row,
        robots=[api_tokens.described(r) for r in robots],
        done=done_of(request, {"revoked": _("The robot was revoked: it signs in no more.")}),
        max_days=MAX_DAYS,
        **context,
    )


@get("/tokens/robots/{name:str}", include_in_schema=False)
async def robot_list(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    await signed_in(request)
    return await _robots(request, name)


@post("/tokens/robots/{name:str}", **_FORM)
async def create_robot(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    form = _submitted(await checked_form(request))
    try:
        label, description, expires_at = _credential(form)
        row, secret = await api_tokens.issue_robot(
            request, name, label, description, expires_at, list(form["actions"])
        )
    except RegistryError as exc:
        if not is_input_error(exc):
            raise
        problem = problem_of(request, exc, _fields(request))
        return await _robots(request, name, exc.status, problem=problem, form=form)
    return _secret_page(request, row, secret)


@post("/tokens/robots/{name:str}/{robot:str}/revoke", **_FORM)
async def revoke_robot(request: Request[Any, Any, Any], name: str, robot: str) -> Response[Any]:
    await checked_form(request)
    caller, row = await api_tokens.robot_of(request, name, robot)
    await api_tokens.revoke(request.app.state.services, row.token_id, caller)
    return redirect(f"/tokens/robots/{quote(name)}?done=revoked")


route_handlers = [token_list, create_token, revoke_token, robot_list, create_robot, revoke_robot]
