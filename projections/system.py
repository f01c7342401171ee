"""Queries for system info: the event store's head and size, how far each view and the
relay have come, and how much the caller may count."""

from __future__ import annotations

from typing import Any, NamedTuple

from psycopg import sql


class EventStore(NamedTuple):
    head: int  # position of the newest event
    bytes: int  # the events table with its indexes
    events: int  # counted up to EXACT_BELOW, estimated beyond (counting would read the log)


# Up to this many events are counted (an index-only scan of ~1.5 ms); beyond, counting grows
# with the log, and Postgres' statistics are close enough.
EXACT_BELOW = 10_000


def _estimated(reltuples: float, relpages: int, pages: int) -> int:
    """What Postgres' planner would estimate: the rows per page of the last ANALYZE (or
    VACUUM) times the table's pages now, so a log grown since is not undercounted. Before
    the first ANALYZE `reltuples` is -1 (and on a young store often 0): nothing known."""
    if reltuples < 0:
        return 0
    if relpages > 0:
        return round(reltuples / relpages * pages)
    return round(reltuples)


async def event_store(conn: Any, table: str) -> EventStore:
    name = sql.Identifier(table)
    cur = await conn.execute(
        sql.SQL(
            "SELECT (SELECT coalesce(max(notification_id), 0) FROM {}),"
            " pg_total_relation_size(c.oid), c.reltuples, c.relpages,"
            " pg_relation_size(c.oid) / current_setting('block_size')::int"
            " FROM pg_class c WHERE c.oid = %s::regclass"
        ).format(name),
        (table,),
    )
    head, size, reltuples, relpages, pages = await cur.fetchone()
    events = _estimated(reltuples, relpages, pages)
    if events < EXACT_BELOW:  # a young store: count (at most EXACT_BELOW rows are read)
        cur = await conn.execute(
            sql.SQL("SELECT count(*) FROM (SELECT FROM {} LIMIT %s) AS t").format(name),
            (EXACT_BELOW,),
        )
        counted = (await cur.fetchone())[0]
        events = counted if counted < EXACT_BELOW else max(events, EXACT_BELOW)
    return EventStore(head, size, events)


async def positions(conn: Any, table: str) -> dict[str, int]:
    """Positions of the views (view_positions) or the relay (relay_positions)."""
    assert table in ("view_positions", "relay_positions")
    key = "view" if table == "view_positions" else "name"
    cur = await conn.execute(f"SELECT {key}, position FROM {table} ORDER BY {key}")
    return dict(await cur.fetchall())


async def counts(conn: Any, readable: list[str] | None) -> tuple[int, int]:
    """(repositories, tags) the caller may see."""
    where, params = (
        ("", ()) if readable is None else (" WHERE namespace = ANY(%s::text[])", (readable,))
    )
    cur = await conn.execute(
        f"SELECT (SELECT count(*) FROM repositories{where}), (SELECT count(*) FROM images{where})",
        params * 2 if params else (),
    )
    return tuple(await cur.fetchone())  # type: ignore[return-value]


class RelayLag(NamedTuple):
    head: int  # position of the newest event
    position: int  # the relay's (0: it never published)
    caught_up_for: float | None  # seconds since it last had published everything (None: never)


async def relay_lag(conn: Any, table: str, stream: str) -> RelayLag:
    """How far the relay of `stream` is behind the event log (relay_positions)."""
    cur = await conn.execute(
        sql.SQL(
            "SELECT (SELECT coalesce(max(notification_id), 0) FROM {}), coalesce(r.position, 0),"
            " extract(epoch FROM clock_timestamp() - r.caught_up_at)::float8"
            " FROM (SELECT 1) one LEFT JOIN relay_positions r ON r.name = %s"
        ).format(sql.Identifier(table)),
        (stream,),
    )
    return RelayLag(*await cur.fetchone())
