"""Addresses of the image pages. Names contain slashes, so a page's address is its name
(and tag) followed by an optional `/-/<part>`: `-` is never a name component."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request

from api.web.images.refusals import not_found
from domain.names import is_valid_name, is_valid_tag


def parts(rest: str) -> tuple[str, str]:
    """`/a/b/-/layers` → ("a/b", "layers"); `/a/b` → ("a/b", "")."""
    target, _, part = rest.lstrip("/").partition("/-/")
    return target, part


def image_of(request: Request[Any, Any, Any], target: str) -> tuple[str, str]:
    """`team/web/frontend/1.0` → ("team/web/frontend", "1.0"); a 404 page if no image."""
    name, _, tag = target.rpartition("/")
    if not is_valid_name(name) or not is_valid_tag(tag):
        raise not_found(request, name or target, tag or "?")
    return name, tag


def repository_of(request: Request[Any, Any, Any], target: str) -> str:
    if not is_valid_name(target):
        raise not_found(request, target)
    return target


def image_url(name: str, tag: str, part: str = "", **query: Any) -> str:
    """The address of an image page (names and tags need no escaping: their grammar has no
    character that a path treats specially)."""
    url = f"/images/{name}/{tag}" + (f"/-/{part}" if part else "")
    return with_query(url, **query)


def repository_url(name: str, part: str = "", **query: Any) -> str:
    return with_query(f"/repositories/{name}" + (f"/-/{part}" if part else ""), **query)


def with_query(url: str, **query: Any) -> str:
    kept = {key: value for key, value in query.items() if value not in (None, "")}
    return url + ("?" + urlencode(kept, quote_via=quote, safe="/:") if kept else "")
