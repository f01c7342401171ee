"""Signing in and out of the web UI: `GET|POST /login`, `POST /logout`.

Sign-in goes through the same `sign_in` as /token and /api/auth/login (the same throttle,
a login event with method "web", no access tokens: a limited token must not open the whole
account), and sets the session cookie. Every refusal says the same thing, whoever it was."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie

from api.auth.token_endpoint import Refused, sign_in
from api.manage.sessions import end_session
from api.web import security
from api.web.session import COOKIE, current, ended_cookie, form_of, session_cookie
from api.web.templates import gettext, redirect, render, safe_next
from domain.throttle import retry_after_header

METHOD = "web"
FORM_LIMIT = 16 * 1024


def _login_csrf_cookie(value: str) -> Cookie:
    return Cookie(
        key=security.LOGIN_COOKIE, value=value, path="/", httponly=True, samesite="strict"
    )


def _form(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    """The sign-in form, with a fresh double-submit CSRF value."""
    token = security.new_login_csrf()
    request.scope["cyp_login_csrf"] = token  # type: ignore[typeddict-unknown-key]
    context.setdefault("problem", None)
    context.setdefault("username", "")
    context.setdefault("next", safe_next(request.query_params.get("next")))
    context.setdefault("changed", request.query_params.get("changed") == "1")
    return render(request, "login.html", status, [_login_csrf_cookie(token)], **context)


@get("/login", include_in_schema=False)
async def login_page(request: Request[Any, Any, Any]) -> Response[Any]:
    if await current(request) is not None:
        return redirect(safe_next(request.query_params.get("next")))
    return _form(request)


@post("/login", status_code=303, include_in_schema=False, request_max_body_size=FORM_LIMIT)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    _ = gettext(request)
    form = await form_of(request)
    target = safe_next(form.get("next"))
    security.check(request.cookies.get(security.LOGIN_COOKIE), form.get(security.FIELD))
    username, password = form.get("username", ""), form.get("password", "")
    if not username or not password:
        problem = _("Enter your username and password.")
        return _form(request, 400, problem=problem, username=username, next=target)
    try:
        found = await sign_in(request, username, password, METHOD, tokens=False)
    except Refused as exc:
        if exc.retry_after is None:
            problem = _("The username or password is wrong.")
            return _form(request, 401, problem=problem, username=username, next=target)
        response = _form(
            request,
            429,
            problem=_("Too many failed sign-ins. Try again in {seconds} seconds.").format(
                seconds=retry_after_header(exc.retry_after)
            ),
            username=username,
            next=target,
        )
        response.headers["Retry-After"] = retry_after_header(exc.retry_after)
        return response
    services = request.app.state.services
    token, _claims = services.api_tokens.issue(found.principal.username)
    return redirect(target, [session_cookie(request, token, services.api_tokens.ttl)])


@post("/logout", status_code=303, include_in_schema=False, request_max_body_size=FORM_LIMIT)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    """Revoke the session (refused from the next request on, on every replica)."""
    caller = await current(request)
    if caller is not None:
        form = await form_of(request)
        security.check(security.session_csrf(request.cookies[COOKIE]), form.get(security.FIELD))
        await end_session(request.app.state.services, caller)
    return redirect("/login", [ended_cookie(request)])


route_handlers = [login_page, login, logout]
