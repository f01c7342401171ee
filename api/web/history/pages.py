"""`GET /history` (the audit log) and `GET /history/tags/{name}/{tag}` (a tag's timeline).

Both ask the history view through `api.manage.history.caller_filter`, the filter of GET
/api/history: the same events for the same user and filters, newest first. Pages are keyed
by position: older ones below the last row shown (`before=`), newer ones above the first
(`after=`), each one indexed query with a LIMIT and one more to learn whether the other
direction has any."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

import msgspec
from litestar import Request, Response, get

from api.manage.history import caller_filter
from api.services import Services
from api.web.history import asking, kinds
from api.web.history.sentences import Part, Writer, digest
from api.web.session import signed_in
from api.web.templates import gettext, language_of, render
from domain.errors import RegistryError
from domain.names import is_valid_name, is_valid_tag
from projections import history
from projections.history import HistoryFilter, HistoryRow

DETAIL_SHOWN = 200  # characters of one detail of an event (the whole event: /api, the store)


class Page(NamedTuple):
    rows: list[HistoryRow]
    newer: int | None  # `after=` of the page above (None: this is the newest)
    older: int | None  # `before=` of the page below (None: nothing older)


async def page_of(services: Services, f: HistoryFilter, at: asking.Cursor) -> Page:
    if at.after is not None:
        found = await services.query(history.newer, f, at.after, at.limit + 1)
        rows = found[: at.limit][::-1]
        bottom = rows[-1].position if rows else at.after + 1
        more = await services.query(history.newest, f, bottom, 1)
        return Page(
            rows, rows[0].position if len(found) > at.limit else None, bottom if more else None
        )
    found = await services.query(history.newest, f, at.before, at.limit + 1)
    rows = found[: at.limit]
    older = rows[-1].position if len(found) > at.limit else None
    if at.before is None:
        return Page(rows, None, older)
    top = rows[0].position if rows else at.before - 1
    above = await services.query(history.newer, f, top, 1)
    return Page(rows, top if above else None, older)


def image_href(repository: str, tag: str) -> str:
    return f"/images/{quote(repository)}/{quote(tag)}"


def timeline_href(repository: str, tag: str) -> str:
    return f"/history/tags/{quote(repository)}/{quote(tag)}"


def _detail(value: Any) -> str:
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return text if len(text) <= DETAIL_SHOWN else text[:DETAIL_SHOWN] + "…"


class Who(NamedTuple):
    actor: str
    label: str  # the actor's name for people
    href: str  # the log of what they did
    client: str


class Shown(NamedTuple):
    """One event as a row of the audit log."""

    position: int
    occurred_at: datetime
    type: str
    type_label: str
    who: Who
    what: list[Part]
    links: list[tuple[str, str]]
    details: list[tuple[str, str]]


def who(writer: Writer, row: HistoryRow) -> Who:
    href = "/history?" + urlencode({"actor": row.actor})
    return Who(row.actor, writer.actor(row.actor), href, row.client)


def shown(writer: Writer, row: HistoryRow) -> Shown:
    _ = writer._
    links: list[tuple[str, str]] = []
    if row.repository and row.tag:
        links += [
            (_("Image"), image_href(row.repository, row.tag)),
            (_("Timeline"), timeline_href(row.repository, row.tag)),
        ]
    elif row.repository:
        links.append((_("Repository"), f"/repositories/{quote(row.repository)}"))
    details = [
        (key, _detail(value)) for key, value in row.details.items() if value not in ("", None)
    ]
    return Shown(
        row.position,
        row.occurred_at,
        row.type,
        kinds.label(_, row.type),
        who(writer, row),
        writer.sentence(row),
        links,
        details,
    )


def _query(request: Request[Any, Any, Any]) -> dict[str, str]:
    params = request.query_params
    return {key: params.get(key) for key in params}


def _writer(request: Request[Any, Any, Any]) -> Writer:
    return Writer(gettext(request), language_of(request))


@get("/history", include_in_schema=False)
async def audit_log(request: Request[Any, Any, Any]) -> Response[Any]:
    await signed_in(request)
    writer = _writer(request)
    query = _query(request)
    asked = asking.filters(query, writer._)
    at = asking.cursor(query, writer._)
    keep = {**asked.form, "limit": query.get("limit", "")}
    page = Page([], None, None)
    if not asked.problems:
        f = await caller_filter(request, **asked.values, since=asked.since, until=asked.until)
        page = await page_of(request.app.state.services, f, at)
    return render(
        request,
        "history/log.html",
        400 if asked.problems else 200,
        form=asked.form,
        problems=asked.problems,
        choices=kinds.choices(writer._),
        events=[shown(writer, row) for row in page.rows],
        newer=asking.link("/history", keep, after=page.newer) if page.newer else None,
        older=asking.link("/history", keep, before=page.older) if page.older else None,
    )


class Move(NamedTuple):
    """One change of a tag: created (no `from`), moved, or deleted (no `to`)."""

    position: int
    occurred_at: datetime
    change: str
    from_digest: Part | None
    to_digest: Part | None
    who: Who


def move(writer: Writer, row: HistoryRow) -> Move:
    _ = writer._
    before, after = row.details.get("from_digest"), row.details.get("to_digest")
    if row.type == "tag.deleted":
        change, after = _("deleted"), None
    elif before:
        change = _("moved")
    else:
        change = _("created")
    return Move(
        row.position,
        row.occurred_at,
        change,
        digest(before) if before else None,
        digest(after) if after else None,
        who(writer, row),
    )


def split(rest: str, _: Callable[[str], str]) -> tuple[str, str]:
    """`{name}/{tag}` of a path (names have slashes; the tag is the last segment)."""
    name, _slash, tag = rest.strip("/").rpartition("/")
    if not is_valid_name(name) or not is_valid_tag(tag):
        raise RegistryError("NOT_FOUND", _("There is no tag of that name."))
    return name, tag


@get("/history/tags/{rest:path}", include_in_schema=False)
async def tag_timeline(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    await signed_in(request)
    writer = _writer(request)
    name, tag = split(rest, writer._)
    query: Mapping[str, str] = _query(request)
    at = asking.cursor(query, writer._)
    f = await caller_filter(request, None, None, name, None, tag=tag, kinds=kinds.TAG_KINDS)
    page = await page_of(request.app.state.services, f, at)
    path = timeline_href(name, tag)
    keep = {"limit": query.get("limit", "")}
    return render(
        request,
        "history/timeline.html",
        name=name,
        tag=tag,
        image=image_href(name, tag),
        repository_log=asking.link("/history", {"repository": name}),
        moves=[move(writer, row) for row in page.rows],
        newer=asking.link(path, keep, after=page.newer) if page.newer else None,
        older=asking.link(path, keep, before=page.older) if page.older else None,
    )


route_handlers = [audit_log, tag_timeline]
