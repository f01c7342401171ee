"""The pulls view: manifest GETs per tag, per repository, per repository and day, and per
namespace and day, from the `pulls.counted` events (domain.pulls: one per repository and
flush of an API process, never one per GET).

What goes when (migration 014): a repository's counts — its tags', its total, its days —
go with the repository (as Harbor's do); a tag's count stays when the tag is deleted or
moved (it counts the name: "latest" across its digests); a namespace's pulls per day are
what happened and stay when a repository goes, until the namespace itself is deleted. A
tag's `last_pulled_at` is the end of the interval it was last counted in (at most
CYP_PULL_FLUSH_SECONDS late). Sums and maxima only, so a replay in any batches equals live.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from domain.content import Repository
from domain.names import namespace_of
from domain.namespaces import Namespace
from domain.pulls import Pulls
from projections import batch

name = "pulls"
tables = ("pull_tags", "pull_repositories", "pull_days", "pull_namespace_days")

_kind = batch.Kinds(
    {
        Pulls.FirstCounted: "count",
        Pulls.Counted: "count",
        Repository.Deleted: "drop",
        Namespace.Deleted: "drop namespace",
    }
)
_TAGS = batch.Rows("repository text, tag text, pull_count bigint, last_pulled_at timestamptz")
_REPOSITORIES = batch.Rows("repository text, pull_count bigint, last_pulled_at timestamptz")
_DAYS = batch.Rows("day date, repository text, pull_count bigint")
_NAMESPACE_DAYS = batch.Rows("day date, namespace text, pull_count bigint")


def _add(table: str, rows: batch.Rows, key: str, latest: bool) -> str:
    """An upsert that adds the rows' counts (and keeps the latest pull time)."""
    columns = ", ".join(rows.names)
    sql = (
        f"INSERT INTO {table} AS p ({columns}) SELECT * FROM {rows.sql}"
        f" ON CONFLICT ({key}) DO UPDATE SET pull_count = p.pull_count + EXCLUDED.pull_count"
    )
    if latest:
        sql += ", last_pulled_at = greatest(p.last_pulled_at, EXCLUDED.last_pulled_at)"
    return sql


_ADD = [
    (_add("pull_tags", _TAGS, "repository, tag", True), _TAGS),
    (_add("pull_repositories", _REPOSITORIES, "repository", True), _REPOSITORIES),
    (_add("pull_days", _DAYS, "day, repository", False), _DAYS),
    (_add("pull_namespace_days", _NAMESPACE_DAYS, "day, namespace", False), _NAMESPACE_DAYS),
]
_DROP = [
    f"DELETE FROM {table} WHERE repository = ANY(%s::text[])"
    for table in ("pull_tags", "pull_repositories", "pull_days")
]
_DROP_NAMESPACE = "DELETE FROM pull_namespace_days WHERE namespace = ANY(%s::text[])"


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _count(cur: Any, run: Sequence[batch.Item]) -> None:
    """A run of counts summed per row first: one statement per table, each row once."""
    tags: dict[tuple[str, str], list[Any]] = {}
    repositories: dict[str, list[Any]] = {}
    days: dict[tuple[date, str], int] = {}
    namespace_days: dict[tuple[date, str], int] = {}
    for e, _ in run:
        until, day = e.until, day_of(e.until)
        for tag, n in e.tags.items():
            row = tags.setdefault((e.repository, tag), [0, until])
            row[0], row[1] = row[0] + n, max(row[1], until)
        total = sum(e.tags.values()) + sum(e.digests.values())
        row = repositories.setdefault(e.repository, [0, until])
        row[0], row[1] = row[0] + total, max(row[1], until)
        days[day, e.repository] = days.get((day, e.repository), 0) + total
        key = (day, namespace_of(e.repository))
        namespace_days[key] = namespace_days.get(key, 0) + total
    found = [
        [(*key, *row) for key, row in tags.items()],
        [(key, *row) for key, row in repositories.items()],
        [(*key, n) for key, n in days.items()],
        [(*key, n) for key, n in namespace_days.items()],
    ]
    for (sql, rows), values in zip(_ADD, found, strict=True):
        if values:
            cur.execute(sql, rows.params(values))


def apply_batch(cur: Any, items: Sequence[batch.Item]) -> None:
    for kind, run in batch.runs(items, _kind):
        if kind == "count":
            _count(cur, run)
        elif kind == "drop":
            names = [e.name for e, _ in run]
            for sql in _DROP:
                cur.execute(sql, (names,))
        else:
            cur.execute(_DROP_NAMESPACE, ([e.name for e, _ in run],))


apply = batch.apply_one(apply_batch)


# -- queries ---------------------------------------------------------------------------------
class PullCount(NamedTuple):
    pull_count: int
    last_pulled_at: datetime | None  # None: never pulled


NEVER = PullCount(0, None)


async def of_tags(conn: Any, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], PullCount]:
    """The counts of these (repository, tag) pairs (a page of images), by key; the pairs
    never pulled are absent. One index probe per pair."""
    if not keys:
        return {}
    cur = await conn.execute(
        "SELECT p.repository, p.tag, p.pull_count, p.last_pulled_at"
        " FROM unnest(%s::text[], %s::text[]) AS k(repository, tag)"
        " JOIN pull_tags p ON p.repository = k.repository AND p.tag = k.tag",
        ([r for r, _ in keys], [t for _, t in keys]),
    )
    return {(r, t): PullCount(n, at) for r, t, n, at in await cur.fetchall()}


async def of_repositories(conn: Any, names: Sequence[str]) -> dict[str, PullCount]:
    """The counts of these repositories (a page of them), by name; those never pulled are
    absent."""
    if not names:
        return {}
    cur = await conn.execute(
        "SELECT repository, pull_count, last_pulled_at FROM pull_repositories"
        " WHERE repository = ANY(%s::text[])",
        (list(names),),
    )
    return {r: PullCount(n, at) for r, n, at in await cur.fetchall()}


def _readable(readable: list[str] | None) -> tuple[str, list[Any]]:
    if readable is None:
        return "", []
    return " AND namespace = ANY(%s::text[])", [readable]


async def per_day(
    conn: Any, days: int, readable: list[str] | None, today: date | None = None
) -> list[tuple[date, int]]:
    """Pulls on each of the last `days` days (UTC) up to `today`, oldest first, days
    without pulls included; of the namespaces in `readable` (None: all)."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    where, params = _readable(readable)
    cur = await conn.execute(
        "SELECT day, sum(pull_count)::bigint FROM pull_namespace_days"
        f" WHERE day >= %s AND day <= %s{where} GROUP BY day",
        [first, today, *params],
    )
    found = dict(await cur.fetchall())
    return [(d, found.get(d, 0)) for d in (first + timedelta(days=i) for i in range(days))]


class TopRepository(NamedTuple):
    repository: str
    pull_count: int


async def top_repositories(
    conn: Any,
    limit: int,
    readable: list[str] | None,
    days: int | None = None,
    today: date | None = None,
) -> list[TopRepository]:
    """The repositories (that exist) pulled most, most first: of all time, or of the last
    `days` days (UTC) up to `today`; of the namespaces in `readable` (None: all)."""
    where, params = _readable(readable)
    live = " AND EXISTS (SELECT 1 FROM repositories r WHERE r.name = p.repository)"
    if days is None:
        cur = await conn.execute(
            f"SELECT repository, pull_count FROM pull_repositories p WHERE true{where}{live}"
            " ORDER BY pull_count DESC, repository LIMIT %s",
            [*params, limit],
        )
    else:
        today = today or datetime.now(UTC).date()
        cur = await conn.execute(
            "SELECT repository, sum(pull_count)::bigint AS n FROM pull_days p"
            f" WHERE day >= %s AND day <= %s{where}{live}"
            " GROUP BY repository ORDER BY n DESC, repository LIMIT %s",
            [today - timedelta(days=days - 1), today, *params, limit],
        )
    return [TopRepository(*row) for row in await cur.fetchall()]
