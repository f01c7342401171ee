"""Loading the aggregates a command touches in one round trip.

eventsourcing's `Repository.get` costs a query per aggregate, two for one not cached (its
latest snapshot, then its events; the snapshot query runs for every class once any class
snapshots): a blob link costs three queries, a manifest push with a tag five. Here one
query brings every wanted aggregate's events after what the cache holds of it, and for the
classes that snapshot, the latest snapshot of those not cached. The cache is used as
`Repository.get` uses it with fast-forwarding: the cached copy is advanced in place under
its fast-forward lock, and the caller gets a deep copy (a failed command leaves no trace).
Those locks are the repository's private API: pyproject pins eventsourcing below 9.6.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from copy import deepcopy
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

# (snapshot?, originator_id, originator_version, topic, state) rows: the snapshots first.
_QUERY = """
WITH wanted(id, after, snapshots) AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(after)s::int[], %(snapshots)s::bool[])
), latest AS (
    SELECT DISTINCT ON (s.originator_id) s.originator_id, s.originator_version, s.topic, s.state
    FROM wanted w JOIN {snapshots} s ON s.originator_id = w.id AND w.snapshots
    ORDER BY s.originator_id, s.originator_version DESC
)
SELECT true AS snapshot, originator_id, originator_version, topic, state FROM latest
UNION ALL
SELECT false, e.originator_id, e.originator_version, e.topic, e.state
FROM wanted w
LEFT JOIN latest l ON l.originator_id = w.id
JOIN {events} e ON e.originator_id = w.id
    AND e.originator_version > greatest(w.after, coalesce(l.originator_version, 0))
ORDER BY 2, 3
"""


class Loader:
    """`load(ids)`: the aggregates with these ids (None for one that does not exist)."""

    def __init__(self, app: Application) -> None:
        self.app = app
        datastore = getattr(app.recorder, "datastore", None)
        self._postgres = datastore is not None  # else in memory (unit tests): one by one
        if datastore is None:
            return
        events = app.recorder.events_table_name  # type: ignore[attr-defined]
        snapshots = (
            app.snapshots.recorder.events_table_name  # type: ignore[attr-defined]
            if app.snapshots is not None
            else events  # never joined: no class asks for snapshots
        )
        self._query = SQL(_QUERY).format(
            events=SQL("{}.{}").format(Identifier(datastore.schema), Identifier(events)),
            snapshots=SQL("{}.{}").format(Identifier(datastore.schema), Identifier(snapshots)),
        )
        self._snapshotting = set(app.snapshotting_intervals or ()) if app.snapshots else set()

    def load(self, wanted: Sequence[tuple[type, UUID]]) -> list[Any | None]:
        repository = self.app.repository
        if not self._postgres:
            return [self._one(aggregate_id) for _, aggregate_id in wanted]
        cache = repository.cache
        cached: dict[UUID, Any] = {}
        if cache is not None:
            for _, aggregate_id in wanted:
                with contextlib.suppress(KeyError):
                    cached[aggregate_id] = cache.get(aggregate_id)
        ids = list(dict.fromkeys(aggregate_id for _, aggregate_id in wanted))
        classes = {aggregate_id: cls for cls, aggregate_id in wanted}
        rows = self._select(
            ids,
            [cached[i].version if i in cached else 0 for i in ids],
            [i not in cached and classes[i] in self._snapshotting for i in ids],
        )
        found: dict[UUID, list[Any]] = {}
        for event in rows:
            found.setdefault(event.originator_id, []).append(event)
        loaded = {i: self._advance(i, cached.get(i), found.get(i, [])) for i in ids}
        return [loaded[aggregate_id] for _, aggregate_id in wanted]

    def _one(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _select(self, ids: list[UUID], after: list[int], snapshots: list[bool]) -> list[Any]:
        """The domain events (snapshots first) of the rows the query finds."""
        params = {"ids": ids, "after": after, "snapshots": snapshots}
        datastore = self.app.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(self._query, params, prepare=True)
            rows = cur.fetchall()
        events = []
        for row in rows:
            store = self.app.snapshots if row["snapshot"] else self.app.events
            stored = StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            events.append(store.mapper.to_domain_event(stored))  # type: ignore[union-attr]
        return events

    def _advance(self, aggregate_id: UUID, cached: Any, events: list[Any]) -> Any | None:
        """The aggregate from its cached copy (advanced in place) or from nothing."""
        repository = self.app.repository
        if cached is None:
            aggregate = None
            for event in events:
                aggregate = event.mutate(aggregate)
            if aggregate is not None and repository.cache is not None:
                repository.cache.put(aggregate_id, aggregate)
                aggregate = deepcopy(aggregate)
            return aggregate
        lock = repository._use_fastforward_lock(aggregate_id)  # noqa: SLF001
        try:
            with lock:  # another command may have advanced it since the query
                for event in events:
                    if event.originator_version == cached.version + 1:
                        event.mutate(cached)
                return deepcopy(cached)
        finally:
            repository._disuse_fastforward_lock(aggregate_id)  # noqa: SLF001
