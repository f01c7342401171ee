"""Records the pulls this API process counted (domain.pulls.PullTally) every interval, one
event per repository that had pulls, and once more when the process stops, so pulls counted
before a graceful stop are not lost.

A flush that fails keeps its batches as they were (same flush id, same counts) and tries
them again at the next flush; a repository's pulls counted meanwhile wait in the tally for
the flush after (so each flush still records one event per repository). Counts are never
dropped and, since a batch tried again keeps its id, never recorded twice — even where the
first try was stored after all (the connection lost during the commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import anyio.to_thread

from domain.caller import SYSTEM
from domain.pulls import PullBatch, PullTally
from domain.registry import Registry

log = logging.getLogger(__name__)

# Repositories one command records (one transaction; a conflict retries them all).
PER_COMMAND = 64


def replica_name() -> str:
    """This API process, as events name it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


class PullFlusher:
    def __init__(
        self,
        registry: Registry,
        tally: PullTally,
        interval: float,
        replica: str | None = None,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.registry = registry
        self.tally = tally
        self.interval = interval
        self.replica = replica or replica_name()
        self._now = now
        self._pending: dict[str, PullBatch] = {}  # repository -> its batch a flush failed
        self.position: int | None = None  # of the last event recorded
        self._lock = asyncio.Lock()  # one flush at a time

    def pending(self) -> int:
        """Pulls counted and not recorded yet (in the tally, or of a failed flush)."""
        return self.tally.pending() + sum(b.total for b in self._pending.values())

    def _batches(self) -> list[PullBatch]:
        counts, starts, until = self.tally.take(self._now())
        batches = dict(self._pending)  # failed ones first, as they were
        for repository, references in counts.items():
            if repository in batches:  # after its failed batch: the next flush
                self.tally.restore(repository, references, starts[repository])
                continue
            batches[repository] = PullBatch(
                repository, references, starts[repository], until, self.replica, uuid.uuid4().hex
            )
        return [batches[name] for name in sorted(batches)]

    async def flush(self) -> int:
        """Record what was counted; returns the pulls of the batches done (recorded, or
        dropped with a repository deleted meanwhile)."""
        async with self._lock:
            batches = self._batches()
            recorded = 0
            for start in range(0, len(batches), PER_COMMAND):
                chunk = batches[start : start + PER_COMMAND]
                try:
                    position = await anyio.to_thread.run_sync(
                        self.registry.count_pulls, chunk, SYSTEM
                    )
                except Exception as exc:  # the database, mostly: try them again next time
                    log.warning(
                        "could not record %d pulls yet: %s", sum(b.total for b in chunk), exc
                    )
                    self._pending.update((b.repository, b) for b in chunk)
                else:
                    for batch in chunk:
                        self._pending.pop(batch.repository, None)
                    if position is not None:
                        self.position = max(self.position or 0, position)
                    recorded += sum(b.total for b in chunk)
            return recorded

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `interval` seconds and, once `stop` is set (the server takes no more
        requests), a last time. Never cancelled mid-flush: a batch in flight is known."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            try:
                await self.flush()
            except Exception:  # never end the loop: the next flush may do
                log.exception("flushing pulls failed")
        if self.pending():
            log.warning("%d pulls counted could not be recorded before the stop", self.pending())
