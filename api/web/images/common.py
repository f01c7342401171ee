"""What every image page shares: rendering with the address helpers, who may push where
(for the empty states' commands), the namespaces a user may filter by, a short digest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response

from api.auth.guards import ApiCaller, api_actions
from api.web.images import paths
from api.web.templates import render
from projections import namespaces

# More namespaces than this and the filter is a text field: a select of thousands of
# options would outweigh the page.
MAX_NAMESPACE_CHOICES = 300


def page(
    request: Request[Any, Any, Any], template: str, status: int = 200, **context: Any
) -> Response[Any]:
    return render(
        request,
        f"images/{template}",
        status,
        image_url=paths.image_url,
        repository_url=paths.repository_url,
        with_query=paths.with_query,
        short=short_digest,
        created=created_at,
        **context,
    )


def short_digest(digest: str) -> str:
    """`sha256:0123456789ab…` → `sha256:0123456789ab` (the full one goes in a title)."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}:{encoded[:12]}" if encoded else digest


def created_at(text: str | None) -> datetime | str | None:
    """An image config's `created` as a time to format, or the text as it is if it is not
    one (it is whatever the pusher wrote)."""
    if not text:
        return None
    head, dot, tail = text.partition(".")
    if dot:  # Go writes nanoseconds; Python reads at most microseconds
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return text
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


async def push_target(request: Request[Any, Any, Any], caller: ApiCaller) -> str | None:
    """Where this user may push a first image (`myapp`, or `alice/myapp` in their personal
    namespace); None if nowhere."""
    if caller.is_admin:
        return "myapp"
    own = f"{caller.actor}/myapp"
    return own if "push" in await api_actions(request, caller, own) else None


async def namespace_choices(
    request: Request[Any, Any, Any], caller: ApiCaller, readable: list[str] | None
) -> list[str] | None:
    """The namespaces this user may read, to filter by (None: too many for a select)."""
    if readable is None:
        services = request.app.state.services
        rows = await services.query(namespaces.listing, caller.actor, True)
        readable = [row.name for row, _role in rows]
    return readable if len(readable) <= MAX_NAMESPACE_CHOICES else None
