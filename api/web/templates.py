"""Renders the web UI's Jinja templates (`api/web/templates/`), one environment per
language with that language's catalogs installed, autoescaping everything: whatever a
pusher controls (names, tags, labels, annotations) is shown as text."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.datastructures import Cookie

from api.auth.guards import base_url
from api.web import i18n, security
from api.web.session import csrf_of

_VARY = "Cookie, Accept-Language"


@functools.cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=PackageLoader("api.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,  # a misspelt variable is an error, not an empty string
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = lambda moment: i18n.when(moment, language)
    env.filters["size"] = lambda value: i18n.size(value, language)
    env.filters["number"] = lambda value: i18n.number(value, language)
    env.globals["languages"] = i18n.LANGUAGES
    env.globals["lang"] = language
    return env


def language_of(request: Request[Any, Any, Any]) -> str:
    return i18n.choose(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language", ""))


def gettext(request: Request[Any, Any, Any]) -> Any:
    """`_` for messages composed in Python (a page's problem line), in the request's language."""
    return i18n.translations(language_of(request)).gettext


def host_of(request: Request[Any, Any, Any]) -> str:
    """The registry's host as `docker` commands name it (`localhost:8080`)."""
    return base_url(request).split("://", 1)[-1]


def here(request: Request[Any, Any, Any]) -> str:
    """This page's path and query: where to come back to."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return request.url.path + (f"?{query}" if query else "")


def render(
    request: Request[Any, Any, Any],
    template: str,
    status: int = 200,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Response[str]:
    """A page: `template` rendered for this request's language and caller."""
    language = language_of(request)
    html = (
        environment(language)
        .get_template(template)
        .render(
            caller=request.scope.get("cyp_api_caller"),
            csrf=csrf_of(request),
            host=host_of(request),
            here=here(request),
            path=request.url.path,
            **context,
        )
    )
    return Response(
        html,
        status_code=status,
        media_type="text/html",
        headers=security.HEADERS | {"Content-Language": language, "Vary": _VARY},
        cookies=cookies,
    )


def redirect(location: str, cookies: list[Cookie] | None = None) -> Response[None]:
    """303 See Other: after a form, the browser GETs `location`."""
    return Response(
        None,
        status_code=303,
        headers=security.HEADERS | {"Location": location},
        cookies=cookies,
    )


def safe_next(target: str | None, default: str = "/") -> str:
    """Where to go after signing in: a path on this site only (no `//host`, no `\\`)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
        or len(target) > 2000
    ):
        return default
    return target
