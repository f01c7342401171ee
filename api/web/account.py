"""`/account`: who you are, and changing your own password (the current one is checked
through the sign-in path, throttled like any sign-in; the change ends every session)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get, post

from api.auth.token_endpoint import Refused, sign_in
from api.web.session import checked_form, ended_cookie, signed_in
from api.web.signing_in import FORM_LIMIT, METHOD
from api.web.templates import gettext, redirect, render
from domain.errors import RegistryError
from domain.passwords import check_password


def role_name(request: Request[Any, Any, Any], role: str) -> str:
    _ = gettext(request)
    return {"admin": _("System administrator"), "user": _("User")}.get(role, role)


def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    caller = request.scope["cyp_api_caller"]
    context.setdefault("problem", None)
    return render(
        request,
        "account.html",
        status,
        role_name=role_name(request, caller.role),
        signed_in_at=datetime.fromtimestamp(caller.claims.auth_time, UTC),
        **context,
    )


@get("/account", include_in_schema=False)
async def account(request: Request[Any, Any, Any]) -> Response[Any]:
    await signed_in(request)
    return _page(request)


@post(
    "/account/password", status_code=303, include_in_schema=False, request_max_body_size=FORM_LIMIT
)
async def change_password(request: Request[Any, Any, Any]) -> Response[Any]:
    caller = await signed_in(request)
    form = await checked_form(request)
    _ = gettext(request)
    try:
        new = check_password(form.get("new", ""))
    except RegistryError:
        return _page(request, 400, problem=_("The new password must be 8 to 1024 characters long."))
    try:
        await sign_in(request, caller.actor, form.get("current", ""), METHOD, tokens=False)
    except Refused as exc:
        problem = (
            _("The current password is wrong.")
            if exc.retry_after is None
            else _("Too many failed attempts. Try again later.")
        )
        return _page(request, 429 if exc.retry_after else 400, problem=problem)
    services = request.app.state.services
    await services.command(services.registry.change_password, caller.actor, new, caller.caller)
    return redirect("/login?changed=1", [ended_cookie(request)])


route_handlers = [account, change_password]
