"""What the image pages say when the /api functions they call refuse: the same status and
code, with a message in the reader's language that names what was asked for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar import Request

from api.web.templates import gettext
from domain.errors import RegistryError


def refusal(
    request: Request[Any, Any, Any], exc: RegistryError, name: str = "", tag: str = ""
) -> RegistryError:
    """`exc` said for people: a missing repository or image, a delete not allowed, a page
    link whose cursor is not this list's. Anything else (e.g. unavailable) stays as it is."""
    _ = gettext(request)
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    field = detail.get("field")
    if "platform" in detail or field == "platform":
        message = _("The platform in this link is not one of this image's.")
    elif exc.code in ("NAME_UNKNOWN", "NAME_INVALID") or (exc.code == "NOT_FOUND" and not tag):
        message = _("There is no repository {name}, or you may not see it.").format(name=name)
    elif exc.code in ("MANIFEST_UNKNOWN", "NOT_FOUND"):
        message = _("There is no image {image}, or you may not see it.").format(
            image=f"{name}:{tag}"
        )
    elif exc.code == "DENIED":
        message = _("You may not delete from {name}.").format(name=name)
    elif exc.code == "INVALID_INPUT" and field == "cursor":
        message = _(
            "This page link is not valid for this list (it belongs to another list or order)."
            " Start again from the first page."
        )
    else:
        return exc
    return RegistryError(exc.code, message, exc.detail, exc.status)


@contextmanager
def shown(request: Request[Any, Any, Any], name: str = "", tag: str = "") -> Iterator[None]:
    """Around calls of /api functions: their refusals said for people."""
    try:
        yield
    except RegistryError as exc:
        said = refusal(request, exc, name, tag)
        if said is exc:
            raise
        raise said from exc


def not_found(request: Request[Any, Any, Any], name: str, tag: str = "") -> RegistryError:
    return refusal(request, RegistryError("NOT_FOUND"), name, tag)


def bad_cursor(request: Request[Any, Any, Any]) -> RegistryError:
    return refusal(request, RegistryError("INVALID_INPUT", detail={"field": "cursor"}))
