"""The dashboard's live feed: the events of the audit log as a line of text each, and
`GET /events/stream` — the same Server-Sent Events as `/api/history/stream` (the same
generator and filter: a user sees what /api shows them, asked again before each batch),
for the browser's EventSource, which cannot send a bearer token: the session cookie signs
it in. Each message's data is the event as /api sends it plus `text`, the line the page
shows (`api/web/static/app.js` prepends it to the list)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, get
from litestar.response import ServerSentEvent

from api.manage.history import (
    HistoryEvent,
    caller_filter,
    event_position,
    history_event,
    live_events,
)
from api.web import i18n
from api.web.session import signed_in
from api.web.templates import language_of
from projections import history

LATEST = 20  # events the page shows when it loads
_encoder = msgspec.json.Encoder()


def _short(digest: str | None) -> str:
    """`sha256:0123456789ab`: enough to tell digests apart in a line of text."""
    if not digest:
        return ""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}:{encoded[:12]}" if encoded else digest[:19]


def _role(_: Callable[[str], str], role: str) -> str:
    names = {
        "owner": _("owner"),
        "maintainer": _("maintainer"),
        "developer": _("developer"),
        "reader": _("reader"),
        "admin": _("system administrator"),
        "user": _("user"),
    }
    return names.get(role, role)


def sentence(event: HistoryEvent, _: Callable[[str], str]) -> str:
    """What happened, in words (`_`: the reader's language)."""
    d: dict[str, Any] = event.details
    facts = {
        "actor": event.actor,
        "repository": event.repository or "",
        "namespace": event.namespace or "",
        "tag": event.tag or "",
        "digest": _short(event.digest),
        "username": str(d.get("username", "")),
        "role": _role(_, str(d.get("role", ""))),
        "method": str(d.get("method", "")),
        "name": str(d.get("name", "")),
        "principal": str(d.get("principal", "")),
        "subject": str(d.get("subject", "")),
        "type": event.type,
    }
    kind = event.type
    if kind == "tag.moved":
        if d.get("from_digest"):
            text = _("{actor} moved {repository}:{tag} to {digest}")
        else:
            text = _("{actor} pushed {repository}:{tag} ({digest})")
    elif kind == "namespace.visibility_changed":
        text = (
            _("{actor} made the namespace {namespace} public")
            if d.get("public")
            else _("{actor} made the namespace {namespace} private")
        )
    elif kind == "token.revoked":
        own = d.get("subject") == event.actor
        text = _("{actor} signed out") if own else _("{actor} ended a session of {subject}")
    elif kind == "pulls.counted":
        counts = [*_counts(d.get("tags")), *_counts(d.get("digests"))]
        facts["count"] = sum(counts)
        text = (
            _("{count} pulls of {repository} recorded")
            if counts
            else _("Pulls of {repository} recorded")
        )
    elif kind in ("access_token.issued", "access_token.revoked"):
        robot = d.get("token_type") == "robot"
        text = {
            ("access_token.issued", True): _("{actor} created the robot account {principal}"),
            ("access_token.issued", False): _("{actor} created the access token {name}"),
            ("access_token.revoked", True): _("{actor} revoked the robot account {principal}"),
            ("access_token.revoked", False): _("{actor} revoked an access token of {principal}"),
        }[kind, robot]
    else:
        text = _messages(_).get(kind) or (
            _("{actor}: {type} in {repository}") if event.repository else _("{actor}: {type}")
        )
    return text.format(**facts)


def _counts(found: object) -> list[int]:
    """The counts of a pulls event's tags or digests (none if its details were cut short)."""
    if not isinstance(found, dict):
        return []
    return [n for n in found.values() if isinstance(n, int)]


def _messages(_: Callable[[str], str]) -> dict[str, str]:
    return {
        "manifest.pushed": _("{actor} pushed the manifest {repository}@{digest}"),
        "manifest.deleted": _("{actor} deleted the manifest {repository}@{digest}"),
        "tag.deleted": _("{actor} deleted the tag {repository}:{tag}"),
        "blob.linked": _("{actor} uploaded the blob {digest} to {repository}"),
        "blob.unlinked": _("{actor} removed the blob {digest} from {repository}"),
        "repository.created": _("{actor} created the repository {repository}"),
        "repository.deleted": _("{actor} deleted the repository {repository}"),
        "namespace.created": _("{actor} created the namespace {namespace}"),
        "namespace.deleted": _("{actor} deleted the namespace {namespace}"),
        "namespace.member_added": _("{actor} added {username} to {namespace} as {role}"),
        "namespace.member_changed": _("{actor} made {username} {role} of {namespace}"),
        "namespace.member_removed": _("{actor} removed {username} from {namespace}"),
        "user.registered": _("{actor} created the user {username} ({role})"),
        "user.password_changed": _("{actor} changed the password of {username}"),
        "user.role_changed": _("{actor} made {username} {role}"),
        "user.disabled": _("{actor} disabled the user {username}"),
        "user.enabled": _("{actor} enabled the user {username}"),
        "user.unlocked": _("{actor} let {username} sign in again"),
        "login.succeeded": _("{username} signed in ({method})"),
        "login.failed": _("A sign-in as {username} failed ({method})"),
    }


def line(event: HistoryEvent, language: str) -> str:
    """The feed's line of an event: when, then what."""
    _ = i18n.translations(language).gettext
    return f"{i18n.when(event.occurred_at, language)} · {sentence(event, _)}"


def message(event: HistoryEvent, language: str) -> str:
    """An SSE message's data: the event as /api/history/stream sends it, plus its `text`."""
    document = msgspec.structs.asdict(event)
    document["text"] = line(event, language)
    return _encoder.encode(document).decode()


async def latest(request: Request[Any, Any, Any], upto: int) -> list[str]:
    """The lines of the newest events the caller may see, up to position `upto` (the live
    stream continues after it), newest first."""
    services = request.app.state.services
    f = await caller_filter(request, None, None, None, None)
    rows = await services.query(history.newest, f, upto + 1, LATEST)
    language = language_of(request)
    return [line(history_event(row), language) for row in rows]


@get("/events/stream", include_in_schema=False)
async def event_stream(request: Request[Any, Any, Any]) -> ServerSentEvent:
    """New events, live, as the session cookie's user may see them; resuming after
    `Last-Event-ID` (the browser reconnecting) or `?after=` (the page's newest line)."""
    await signed_in(request)
    await caller_filter(request, None, None, None, None)
    services = request.app.state.services
    language = language_of(request)

    async def current() -> history.HistoryFilter:
        request.scope.pop("cyp_api_caller", None)  # type: ignore[misc] - the session anew
        await signed_in(request)
        return await caller_filter(request, None, None, None, None)

    start = event_position(request.headers.get("last-event-id"), "Last-Event-ID")
    if start is None:
        start = event_position(request.query_params.get("after"), "after")
    if start is None:
        start = services.waiter.position
    return ServerSentEvent(
        live_events(services, current, start, lambda event: message(event, language)),
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


route_handlers = [event_stream]
