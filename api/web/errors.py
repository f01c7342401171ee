"""What a refused or failed page request gets: a readable page in the reader's language
with the right status (never a trace), or, when nobody is signed in, the sign-in page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response

from api.web.session import COOKIE, ended_cookie
from api.web.templates import gettext, here, redirect, render

# Paths that are not pages: their errors keep their own forms (OCI, the envelope).
NOT_PAGES = ("/v2", "/api", "/token", "/health")


def is_page(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    return not any(path == p or path.startswith(p + "/") for p in NOT_PAGES)


def _title(request: Request[Any, Any, Any], status: int) -> str:
    _ = gettext(request)
    titles = {
        400: _("That did not work"),
        403: _("Not allowed"),
        404: _("Not found"),
        405: _("Not allowed"),
        413: _("Too large"),
        429: _("Too many requests"),
        503: _("Unavailable right now"),
    }
    return titles.get(status, _("Something went wrong"))


def page_error(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    if status == 401:
        cookies = [ended_cookie(request)] if request.cookies.get(COOKIE) else None
        return redirect("/login?next=" + quote(here(request), safe="/"), cookies)
    if status >= 500 and status != 503:
        _ = gettext(request)
        message = _("An unexpected error happened. It was logged.")
    response = render(request, "error.html", status, title=_title(request, status), message=message)
    for name, value in (headers or {}).items():
        if name.lower() in ("retry-after", "allow"):
            response.headers[name] = value
    return response
