"""/api/history: the audit log (the history view: every event), newest first, and the same
events live as Server-Sent Events.

- `GET /api/history?actor=&type=&repository=&tag=&namespace=&since=&until=&limit=&cursor=`
  → a page of events newest first and `next_cursor` (the position to continue below);
  `tag` (with `repository`): that tag's events — its timeline of moves;
- `GET /api/history/stream?actor=&type=&repository=&namespace=` → `text/event-stream`: every
  new event as it reaches the views (`id:` its position, `data:` the event as in the page),
  resuming after `Last-Event-ID` (or `?after=`) when given, else from now on. It wakes on the
  projection runner's `pg_notify` (the read-your-writes waiter), never polls; a comment every
  15 s keeps proxies from closing an idle stream.

System admins see every event; other users the events of the namespaces they may read plus
their own (the stream asks again before each batch: a member removed from a namespace stops
seeing it, and a signed-out or disabled user's stream ends). A namespace's events — asked for
with `namespace=`, or seen as its member — are those of the namespace as it exists now: a
deleted namespace's name taken again shows nothing of the old one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
import psycopg
from litestar import Request, Response, get
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.auth.guards import api_caller, readable_namespaces
from api.manage.envelope import Envelope, ok
from api.manage.openapi import errors
from api.manage.params import TEXT, Limit
from api.services import Services
from domain.errors import RegistryError
from projections import history

KEEP_ALIVE = 15.0  # seconds between comments on an idle stream
BATCH = 200
Text = Annotated[str | None, Parameter(max_length=255, pattern=TEXT)]


class HistoryEvent(msgspec.Struct):
    position: int
    occurred_at: datetime
    type: str
    actor: str
    client: str
    repository: str | None
    namespace: str | None
    tag: str | None
    digest: str | None
    details: dict[str, Any]


class HistoryPage(msgspec.Struct):
    items: list[HistoryEvent]
    next_cursor: str | None  # older events follow below this position


def history_event(row: history.HistoryRow) -> HistoryEvent:
    return HistoryEvent(**row._asdict())


async def caller_filter(
    request: Request[Any, Any, Any],
    actor: str | None,
    type: str | None,  # noqa: A002 - the query parameter's name
    repository: str | None,
    namespace: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
    tag: str | None = None,
    kinds: tuple[str, ...] | None = None,
) -> history.HistoryFilter:
    """What this caller asked for, limited to what they may see (the web UI's history
    pages ask this too, so a user sees there exactly what /api shows them)."""
    caller = await api_caller(request)
    readable = await readable_namespaces(request, caller)
    for when, field in ((since, "since"), (until, "until")):
        if when is not None and when.tzinfo is None:
            raise RegistryError(
                "INVALID_INPUT", f"{field} needs a time zone (e.g. Z)", {"field": field}
            )
    if tag is not None and repository is None:  # (the index is by repository and tag)
        raise RegistryError("INVALID_INPUT", "tag needs a repository", {"field": "tag"})
    return history.HistoryFilter(
        readable,
        caller.actor,
        actor,
        type,
        repository,
        namespace,
        since,
        until,
        tag,
        kinds,
    )


def event_position(text: str | None, field: str) -> int | None:
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise RegistryError("INVALID_INPUT", f"{field} must be an event position", {"field": field})
    return int(text)


@get("/api/history", tags=["history"], responses=errors())
async def list_history(
    request: Request[Any, Any, Any],
    actor: Text = None,
    type: Annotated[  # noqa: A002 - the query parameter's name
        str | None,
        Parameter(max_length=255, pattern=TEXT, description="an event type, e.g. tag.moved"),
    ] = None,
    repository: Text = None,
    tag: Annotated[
        str | None,
        Parameter(max_length=128, pattern=TEXT, description="with `repository`: one tag's events"),
    ] = None,
    namespace: Text = None,
    since: Annotated[
        datetime | None, Parameter(description="events at or after (ISO 8601, with zone)")
    ] = None,
    until: Annotated[
        datetime | None, Parameter(description="events before (ISO 8601, with zone)")
    ] = None,
    limit: Limit = 50,
    cursor: Annotated[
        str | None, Parameter(max_length=32, description="`next_cursor` of the previous page")
    ] = None,
) -> Response[Envelope[HistoryPage]]:
    """The audit log, newest first."""
    services: Services = request.app.state.services
    f = await caller_filter(request, actor, type, repository, namespace, since, until, tag)
    before = event_position(cursor, "cursor")
    rows = await services.query(history.newest, f, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return ok(
        HistoryPage([history_event(row) for row in rows], str(rows[-1].position) if more else None)
    )


_encoder = msgspec.json.Encoder()


def event_json(event: HistoryEvent) -> str:
    return _encoder.encode(event).decode()


async def live_events(
    services: Services,
    current: Callable[[], Awaitable[history.HistoryFilter]],
    after: int,
    encode: Callable[[HistoryEvent], str] = event_json,
) -> AsyncIterator[ServerSentEventMessage]:
    """The events after position `after` that `current()` (asked anew before each batch)
    lets the caller see, as they reach the views; each message's data is `encode(event)`
    (also the web UI's feed, which adds a line of text)."""
    while True:
        head = services.waiter.position
        if head > after:
            # Who may see what is asked again before each batch: a member removed from a
            # namespace stops seeing it, a signed-out or disabled user's stream ends.
            try:
                f = await current()
                rows = await services.query(history.following, f, after, head, BATCH)
            except (RegistryError, psycopg.Error):  # signed out, or the database went away:
                return  # the client reconnects with Last-Event-ID
            for row in rows:
                data = encode(history_event(row))
                yield ServerSentEventMessage(data=data, id=str(row.position))
            after = rows[-1].position if len(rows) == BATCH else head
            continue
        if not await services.waiter.wait(after + 1, KEEP_ALIVE, warn=False):
            yield ServerSentEventMessage(comment="keep-alive")


@get(
    "/api/history/stream",
    tags=["history"],
    responses=errors(),
    description="Server-Sent Events: `id:` the event's position, `data:` the event (JSON, as"
    " in GET /api/history). Reconnecting with `Last-Event-ID` resumes after it.",
)
async def stream_history(
    request: Request[Any, Any, Any],
    actor: Text = None,
    type: Annotated[  # noqa: A002 - the query parameter's name
        str | None, Parameter(max_length=255, pattern=TEXT)
    ] = None,
    repository: Text = None,
    namespace: Text = None,
    after: Annotated[
        str | None, Parameter(max_length=32, description="resume after this position")
    ] = None,
) -> ServerSentEvent:
    """New events, live."""
    services: Services = request.app.state.services
    await caller_filter(request, actor, type, repository, namespace)  # refuse bad input at once

    async def current() -> history.HistoryFilter:
        request.scope.pop("cyp_api_caller", None)  # type: ignore[misc] - the session anew
        return await caller_filter(request, actor, type, repository, namespace)

    start = event_position(request.headers.get("last-event-id"), "Last-Event-ID")
    if start is None:
        start = event_position(after, "after")
    if start is None:
        start = services.waiter.position
    return ServerSentEvent(
        live_events(services, current, start), headers={"Cache-Control": "no-store"}
    )


route_handlers = [list_history, stream_history]
