"""Pulls: manifest GETs counted in memory by each API process (`PullTally`, a dict increment
per GET) and recorded on an interval as one event per repository (`Pulls.Counted`), never
one event per GET: the fast path stays fast and the log stays small.

A pull is a manifest GET answered 200 (a HEAD is none, as on Docker Hub), by tag or by
digest: a multi-arch `docker pull` fetches the index by tag and then its platform's
manifest by digest, two GETs, two pulls (Docker Hub counts per platform fetched too). An
event names the counts per tag and per digest, the interval they were counted in, the
replica that counted them, and a flush id: a flush that failed in a way that leaves it
unknown whether it was stored (the connection lost during the commit) is tried again with
the same id, and the aggregate, which remembers the ids it recorded lately, stores it once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.ids import aggregate_id

# Flush ids an aggregate remembers: more than the flushes of one repository (one per
# replica and interval) that can pass before a failed one is tried again (the next interval).
RECENT_FLUSHES = 32
# Tags and digests one event names at most: a repository with more pulled in one interval
# gets several events (bounded events; the history shows 16 KiB of each).
MAX_REFERENCES = 500


class Pulls(Aggregate):
    """The pulls of one repository, one event per flush of a replica that counted some (the
    aggregate orders the replicas' flushes: two at once conflict, and one retries). Its
    first event is its creation event, the same kind as the others."""

    class FirstCounted(Aggregate.Created):
        kind: ClassVar[str] = "pulls.counted"
        repository: str
        tags: dict[str, int]  # tag -> manifest GETs by that tag
        digests: dict[str, int]  # digest -> manifest GETs by that digest
        since: datetime  # the interval the GETs were counted in
        until: datetime
        replica: str  # the API process that counted them
        flush: str  # the flush's id (a flush tried again is stored once)
        actor: str
        client: str

    class Counted(Aggregate.Event):
        kind: ClassVar[str] = "pulls.counted"
        repository: str
        tags: dict[str, int]
        digests: dict[str, int]
        since: datetime
        until: datetime
        replica: str
        flush: str
        actor: str
        client: str

        def apply(self, aggregate: Pulls) -> None:
            aggregate.remember(self.flush)

    def __init__(self, repository: str, flush: str, **_: Any) -> None:
        self.repository = repository
        self.recent: list[str] = [flush]  # the last RECENT_FLUSHES flush ids recorded

    def remember(self, flush: str) -> None:
        if self.recent[-1:] != [flush]:  # (the parts of one flush: once)
            self.recent = [*self.recent[-(RECENT_FLUSHES - 1) :], flush]

    @staticmethod
    def create_id(repository: str) -> UUID:
        return aggregate_id("pulls", repository)

    @classmethod
    def record(cls, found: Pulls | None, batch: PullBatch, actor: str, client: str) -> Pulls | None:
        """`batch` recorded on the repository's aggregate (`found`, None: it has none yet);
        None if it was recorded already (a flush tried again)."""
        if found is not None and batch.flush in found.recent:
            return None
        for tags, digests in batch.parts():
            fields: dict[str, Any] = dict(
                repository=batch.repository,
                tags=tags,
                digests=digests,
                since=batch.since,
                until=batch.until,
                replica=batch.replica,
                flush=batch.flush,
                actor=actor,
                client=client,
            )
            if found is None:
                found = cls._create(cls.FirstCounted, id=cls.create_id(batch.repository), **fields)
            else:
                found.trigger_event(cls.Counted, **fields)
        return found


class PullBatch(NamedTuple):
    """One repository's pulls of one flush: what one `Pulls.Counted` event records (a few
    events if it names more than MAX_REFERENCES tags and digests)."""

    repository: str
    counts: dict[str, int]  # reference (a tag, or a digest: it has a ':') -> GETs
    since: datetime
    until: datetime
    replica: str
    flush: str

    def parts(self) -> Iterator[tuple[dict[str, int], dict[str, int]]]:
        """(tags, digests) of each event, at most MAX_REFERENCES references each."""
        items = sorted(self.counts.items())
        for start in range(0, len(items), MAX_REFERENCES):
            part = items[start : start + MAX_REFERENCES]
            yield (
                {ref: n for ref, n in part if ":" not in ref},
                {ref: n for ref, n in part if ":" in ref},
            )

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class PullTally:
    """Pulls counted in memory since the last flush, per (repository, reference).

    `pulled` is all the hot path does: one dict increment. It and `take` run on the event
    loop (the fast path and the /v2 handler are coroutines, the flush loop is a task), so the
    swap in `take` needs no lock. Counts a flush could not record come back (`restore`) with
    the start of their interval, so they are recorded later, never lost.
    """

    def __init__(self, now: datetime | None = None) -> None:
        self._counts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._since = now or datetime.now(UTC)
        self._restored: dict[str, datetime] = {}  # repository -> start of its oldest count

    def pulled(self, repository: str, reference: str) -> None:
        self._counts[repository, reference] += 1

    def take(
        self, now: datetime
    ) -> tuple[dict[str, dict[str, int]], dict[str, datetime], datetime]:
        """The counts so far by repository, when each repository's counting began, and now
        (the interval's end); counting starts again from zero."""
        counts, self._counts = self._counts, defaultdict(int)
        since, self._since = self._since, now
        restored, self._restored = self._restored, {}
        found: dict[str, dict[str, int]] = {}
        for (repository, reference), n in counts.items():
            found.setdefault(repository, {})[reference] = n
        starts = {repository: restored.get(repository, since) for repository in found}
        return found, starts, now

    def restore(self, repository: str, counts: dict[str, int], since: datetime) -> None:
        """Give back counts a flush did not record, counted since `since`."""
        for reference, n in counts.items():
            self._counts[repository, reference] += n
        earliest = self._restored.get(repository, since)
        self._restored[repository] = min(earliest, since)

    def pending(self) -> int:
        """Pulls counted and not yet taken."""
        return sum(self._counts.values())
