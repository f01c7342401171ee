"""The pushes view: per day (UTC) and namespace, how many tags were pushed (set to an image:
created or moved — what `docker push name:tag` does) and how many manifests, so the
dashboard's pushes per day read at most a month of rows per namespace, not the log.

A namespace's days go with the namespace (as its pulls do: a name taken again starts
afresh); a deleted repository's pushes stay in its namespace's days: they happened."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from domain.content import Manifest, Tag
from domain.names import namespace_of
from domain.namespaces import Namespace
from projections import batch

name = "pushes"
tables = ("push_days",)

_kind = batch.Kinds(
    {
        Tag.Created: "count",
        Tag.Moved: "count",
        Manifest.Pushed: "count",
        Manifest.Repushed: "count",
        Namespace.Deleted: "drop",
    }
)
_DAYS = batch.Rows("day date, namespace text, tags bigint, manifests bigint")
_COUNT = (
    f"INSERT INTO push_days (day, namespace, tags, manifests) SELECT * FROM {_DAYS.sql}"
    " ON CONFLICT (day, namespace) DO UPDATE SET tags = push_days.tags + EXCLUDED.tags,"
    " manifests = push_days.manifests + EXCLUDED.manifests"
)
_DROP = "DELETE FROM push_days WHERE namespace = ANY(%s::text[])"


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _count(cur: Any, run: Sequence[batch.Item]) -> None:
    tags: Counter[tuple[date, str]] = Counter()
    manifests: Counter[tuple[date, str]] = Counter()
    for event, _ in run:
        key = (day_of(event.timestamp), namespace_of(event.repository))
        (tags if isinstance(event, Tag.Event) else manifests)[key] += 1
    keys = sorted(tags.keys() | manifests.keys())  # one row per key: the upsert's rule
    rows = ((day.isoformat(), ns, tags[day, ns], manifests[day, ns]) for day, ns in keys)
    cur.execute(_COUNT, _DAYS.params(rows))


def apply_batch(cur: Any, items: Sequence[batch.Item]) -> None:
    for kind, run in batch.runs(items, _kind):
        if kind == "count":
            _count(cur, run)
        else:
            cur.execute(_DROP, ([e.name for e, _ in run],))


apply = batch.apply_one(apply_batch)


# -- queries ---------------------------------------------------------------------------------
class PushDay(NamedTuple):
    day: date
    tags: int  # tags pushed (created or moved)
    manifests: int


async def per_day(
    conn: Any, days: int, readable: list[str] | None, today: date | None = None
) -> list[PushDay]:
    """Pushes on each of the last `days` days (UTC) up to `today`, oldest first, days
    without pushes included; of the namespaces in `readable` (None: all)."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    where, params = "", []
    if readable is not None:
        where, params = " AND namespace = ANY(%s::text[])", [readable]
    cur = await conn.execute(
        "SELECT day, sum(tags)::bigint, sum(manifests)::bigint FROM push_days"
        f" WHERE day >= %s AND day <= %s{where} GROUP BY day",
        [first, today, *params],
    )
    found = {day: PushDay(day, tags, manifests) for day, tags, manifests in await cur.fetchall()}
    every = (first + timedelta(days=i) for i in range(days))
    return [found.get(day, PushDay(day, 0, 0)) for day in every]
