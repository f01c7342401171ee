"""Who is signed in to the web UI: an /api session token (`api.auth.jwts.ApiTokens`) in
the HttpOnly, SameSite cookie `cyp_session` (Secure when CYP_PUBLIC_URL is https). It ends
as /api sessions end — signing out revokes it, a password change or disabling the user
refuses it — because it is checked by the same function (`api.auth.guards.session_caller`).

A page asks `signed_in(request)`: the caller, or `SignInRequired`, which every web page
answers with a redirect to `/login?next=<where they were>`."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import Cookie

from api.auth.guards import ApiCaller, ApiUnauthorized, session_caller
from api.web import security
from domain.errors import RegistryError

COOKIE = "cyp_session"


class SignInRequired(RegistryError):
    """Not signed in (or the session ended): the page sends the browser to /login."""

    def __init__(self, message: str = "sign in to continue") -> None:
        super().__init__("UNAUTHORIZED", message)


def _secure(request: Request[Any, Any, Any]) -> bool:
    return request.app.state.services.public_url.startswith("https://")


def session_cookie(request: Request[Any, Any, Any], token: str, max_age: int) -> Cookie:
    return Cookie(
        key=COOKIE,
        value=token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def ended_cookie(request: Request[Any, Any, Any]) -> Cookie:
    return Cookie(
        key=COOKIE,
        value="",
        max_age=0,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


async def current(request: Request[Any, Any, Any]) -> ApiCaller | None:
    """The signed-in caller of this request, None if nobody (or the session ended)."""
    cached = request.scope.get("cyp_api_caller")
    if cached is not None:
        return cached
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        found = await session_caller(request, token)
    except ApiUnauthorized:
        return None
    # the /api surface's own functions read the caller from here
    request.scope["cyp_api_caller"] = found  # type: ignore[typeddict-unknown-key]
    return found


async def signed_in(request: Request[Any, Any, Any]) -> ApiCaller:
    found = await current(request)
    if found is None:
        raise SignInRequired()
    return found


def csrf_of(request: Request[Any, Any, Any]) -> str:
    """The CSRF token the forms of this page carry."""
    token = request.cookies.get(COOKIE)
    if token and request.scope.get("cyp_api_caller") is not None:
        return security.session_csrf(token)
    return request.scope.get("cyp_login_csrf") or request.cookies.get(security.LOGIN_COOKIE) or ""


async def checked_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The submitted form of a signed-in user's state-changing request, CSRF checked."""
    await signed_in(request)
    form = await form_of(request)
    given = form.get(security.FIELD) or request.headers.get(security.HEADER)
    security.check(security.session_csrf(request.cookies[COOKIE]), given)
    return form


async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    """A urlencoded or multipart form as plain strings (the first of repeated fields)."""
    data = await request.form()
    return {key: value for key, value in data.items() if isinstance(value, str)}
