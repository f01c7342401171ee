"""The history view: every event, in log order — the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from domain.caller import SYSTEM_ACTOR
from domain.documents import IDENTITY, bounded, event_fields, event_kind
from domain.names import namespace_of
from projections import batch

name = "history"
tables = ("history",)
_COLUMNS = {"actor", "client", *IDENTITY}
# An event's details in the view (and so in a page of GET /api/history or an SSE event)
# take at most this much JSON: a 4 MiB manifest's layers or annotations become a digest and
# a size (domain.documents.bounded); the whole event stays in the event store. 16 KiB keeps
# every field of an image of a hundred layers.
DETAILS_LIMIT = 16 * 1024


def _subject(kind: str, fields: dict[str, Any]) -> tuple[str | None, str | None]:
    """(repository, namespace) an event concerns. Only repository.* events call their
    repository `name`: namespace and token events have a `name` of their own."""
    repository = fields.get("repository")
    if repository is None and kind.startswith("repository."):
        repository = fields.get("name")
    if isinstance(repository, str) and repository:
        return repository, namespace_of(repository)
    if kind.startswith("namespace."):
        return None, fields.get("name")
    namespace = fields.get("namespace")
    return None, namespace if isinstance(namespace, str) and namespace else None


_ROWS = batch.Rows(
    "position bigint, occurred_at timestamptz, type text, actor text, client text,"
    " repository text, tag text, digest text, details jsonb, namespace text"
)
_INSERT = (
    "INSERT INTO history (position, occurred_at, type, actor, client, repository, tag,"
    f" digest, details, namespace) SELECT * FROM {_ROWS.sql} ON CONFLICT (position) DO NOTHING"
)


def _row(event: Any, position: int) -> tuple[Any, ...]:
    fields = event_fields(event)
    kind = event_kind(event)
    repository, namespace = _subject(kind, fields)
    digest = fields.get("digest", fields.get("to_digest"))
    details = {k: v for k, v in fields.items() if k not in _COLUMNS}
    fitted = bounded(details, DETAILS_LIMIT)  # (its JSON goes as it is: not encoded again)
    document = msgspec.Raw(fitted.json) if fitted is not None else {"truncated": True}
    return (
        position,
        event.timestamp,
        kind,
        fields.get("actor", SYSTEM_ACTOR),
        fields.get("client", ""),
        repository,
        fields.get("tag"),
        digest,
        document,
        namespace,
    )


def apply_batch(cur: Any, items: Sequence[batch.Item]) -> None:
    """Every event is one row: the whole batch in one statement."""
    if items:
        cur.execute(_INSERT, _ROWS.params(_row(e, p) for e, p in items))


apply = batch.apply_one(apply_batch)


# -- queries (GET /api/history and its live stream) ----------------------------------------
class HistoryRow(NamedTuple):
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


class HistoryFilter(NamedTuple):
    """What a caller asks for, and what they may see: `readable` namespaces (None: all, a
    system admin) — of each only the events since it was (re)created, none of a deleted one
    of its name — plus the events `me` did. A `namespace` asked for is likewise the one
    that exists now (all of that name's events if none does: the audit of a deleted one)."""

    readable: list[str] | None
    me: str
    actor: str | None = None
    type: str | None = None
    repository: str | None = None
    namespace: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tag: str | None = None  # with `repository`: that tag's events (index history_by_tag)
    kinds: tuple[str, ...] | None = None  # any of these types (a tag's timeline: its moves)


# Rows projected before details were bounded may still be large (until a `replay`): those
# answer `{"truncated": true}` (the limit here is looser: Postgres' JSON text has spaces).
_DETAILS = (
    f"CASE WHEN octet_length(details::text) <= {4 * DETAILS_LIMIT} THEN details"
    """ ELSE '{"truncated": true}'::jsonb END"""
)
_SELECT = (
    "SELECT "
    + ", ".join(_DETAILS if f == "details" else f for f in HistoryRow._fields)
    + " FROM history WHERE true"
)
# The event is of its namespace as it exists now, not of a deleted one of that name: at or
# after the position the namespace was (re)created at (`projections.namespaces`).
_CURRENT = (
    " position >= coalesce((SELECT n.created_position FROM namespaces n"
    " WHERE n.name = history.namespace), 0)"
)


def _where(f: HistoryFilter) -> tuple[str, list[Any]]:
    sql, params = "", []
    if f.readable is not None:
        sql += f" AND ((namespace = ANY(%s::text[]) AND {_CURRENT}) OR actor = %s)"
        params += [f.readable, f.me]
    for column in ("actor", "type", "repository", "namespace", "tag"):
        value = getattr(f, column)
        if value is not None:
            sql += f" AND {column} = %s"
            params.append(value)
    if f.kinds is not None:
        sql += " AND type = ANY(%s::text[])"
        params.append(list(f.kinds))
    if f.namespace is not None:  # what a namespace's history is: only its current one's
        sql += f" AND {_CURRENT}"
    if f.since is not None:
        sql += " AND occurred_at >= %s"
        params.append(f.since)
    if f.until is not None:
        sql += " AND occurred_at < %s"
        params.append(f.until)
    return sql, params


async def newest(conn: Any, f: HistoryFilter, before: int | None, limit: int) -> list[HistoryRow]:
    """Newest first, older than position `before` (None: from the newest)."""
    where, params = _where(f)
    if before is not None:
        where += " AND position < %s"
        params.append(before)
    cur = await conn.execute(f"{_SELECT}{where} ORDER BY position DESC LIMIT %s", [*params, limit])
    return [HistoryRow(*row) for row in await cur.fetchall()]


async def following(
    conn: Any, f: HistoryFilter, after: int, upto: int, limit: int
) -> list[HistoryRow]:
    """Oldest first, in (`after`, `upto`]: what a live stream sends next."""
    where, params = _where(f)
    cur = await conn.execute(
        f"{_SELECT}{where} AND position > %s AND position <= %s ORDER BY position LIMIT %s",
        [*params, after, upto, limit],
    )
    return [HistoryRow(*row) for row in await cur.fetchall()]


async def newer(conn: Any, f: HistoryFilter, after: int, limit: int) -> list[HistoryRow]:
    """Oldest first, newer than position `after`: the page above a page (shown reversed)."""
    where, params = _where(f)
    cur = await conn.execute(
        f"{_SELECT}{where} AND position > %s ORDER BY position LIMIT %s", [*params, after, limit]
    )
    return [HistoryRow(*row) for row in await cur.fetchall()]
