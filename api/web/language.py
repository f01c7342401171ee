"""`POST /language`: the language toggle (a cookie for a year; the page comes back)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import Cookie

from api.web import i18n, security
from api.web.session import COOKIE, current, form_of
from api.web.signing_in import FORM_LIMIT
from api.web.templates import redirect, safe_next

YEAR = 365 * 24 * 3600


@post("/language", status_code=303, include_in_schema=False, request_max_body_size=FORM_LIMIT)
async def choose_language(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await form_of(request)
    signed_in = await current(request) is not None
    expected = (
        security.session_csrf(request.cookies[COOKIE])
        if signed_in
        else request.cookies.get(security.LOGIN_COOKIE)
    )
    security.check(expected, form.get(security.FIELD))
    language = form.get("lang", "")
    if language not in i18n.LANGUAGES:
        language = i18n.ENGLISH
    cookie = Cookie(key=i18n.COOKIE, value=language, max_age=YEAR, path="/", samesite="lax")
    return redirect(safe_next(form.get("next")), [cookie])


route_handlers = [choose_language]
