"""The query parameters of the image pages, checked as /api checks them (the same choices
and bounds); a bad one is a 400 page that names it, in the reader's language."""

from __future__ import annotations

from typing import Any

from litestar import Request

from api.web.templates import gettext
from domain.errors import RegistryError

ORDERS = ("asc", "desc")
MOST = 500  # rows a page, as /api's `limit`
MAX_TEXT = 255
MAX_CURSOR = 4096


def _bad(request: Request[Any, Any, Any], field: str) -> RegistryError:
    _ = gettext(request)
    message = _("The value of “{field}” in this address is not valid.").format(field=field)
    return RegistryError("INVALID_INPUT", message, {"field": field})


def _raw(request: Request[Any, Any, Any], field: str, most: int) -> str | None:
    value = request.query_params.get(field)
    if value is None or value == "":
        return None
    if len(value) > most or "\x00" in value:
        raise _bad(request, field)
    return value


def text(request: Request[Any, Any, Any], field: str) -> str | None:
    """Free text (a search, a namespace): None when empty."""
    return _raw(request, field, MAX_TEXT)


def cursor(request: Request[Any, Any, Any]) -> str | None:
    return _raw(request, "cursor", MAX_CURSOR)


def choice(
    request: Request[Any, Any, Any], field: str, choices: tuple[str, ...], default: str | None
) -> str | None:
    value = _raw(request, field, MAX_TEXT)
    if value is None:
        return default
    if value not in choices:
        raise _bad(request, field)
    return value


def limit(request: Request[Any, Any, Any], default: int, most: int = MOST) -> int:
    value = _raw(request, "limit", 8)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= most:
        raise _bad(request, "limit")
    return int(value)
