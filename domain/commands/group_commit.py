"""Group commit: the commands of one process that are ready to save at the same moment are
stored in one event-store transaction.

Inserts into the event store are serialized until they commit (cyp_registry/eventstore.py),
so concurrent commands queue anyway; here they queue in the process instead, and the first
of them writes everything pending as one insert (leader and followers: no writer thread, no
extra hand-off). Each command still gets its own recordings, and its own conflict: a batch
that conflicts (or that the store refuses for any reason but a lost database) is split in
halves until the culprits are alone, so the others are stored and only those see the
`RecordConflictError` (and retry, as they would alone) or the error.

Two commands of one batch never store events of the same aggregate: the second would save
a version the first already takes, so it waits for the next batch (where it conflicts, or
not if it read the state after the first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError

from domain.errors import DatabaseUnavailable

# Commands per transaction at most: bounds a transaction's size and a batch's retry cost.
MAX_BATCH = 64

# Errors that are no command's fault: the whole batch fails at once (no halving retries).
DATABASE_LOST = (OperationalError, InterfaceError, DatabaseUnavailable)

Put = Callable[[Sequence[Any]], Sequence[Any]]


class _Ticket:
    """One command's events and, once written, its recordings or its error."""

    __slots__ = ("aggregates", "done", "error", "events", "recordings")

    def __init__(self, events: Sequence[Any]) -> None:
        self.events = events
        self.aggregates = {e.originator_id for e in events}
        self.done = False
        self.recordings: Sequence[Any] = ()
        self.error: BaseException | None = None


class GroupCommit:
    def __init__(self, put: Put) -> None:
        self._put = put  # stores events in one transaction, returns their recordings
        self._cond = threading.Condition()
        self._pending: list[_Ticket] = []
        self._writing = False
        self.transactions = 0  # written (batches and their halves), for tests and tuning
        self.commands = 0  # commands stored

    def queued(self) -> int:
        """Commands waiting for a transaction."""
        with self._cond:
            return len(self._pending)

    def save(self, events: Sequence[Any]) -> Sequence[Any]:
        """Store `events` (one command's) with whatever else is pending; their recordings."""
        ticket = _Ticket(events)
        with self._cond:
            self._pending.append(ticket)
        while True:
            with self._cond:
                while self._writing and not ticket.done:
                    self._cond.wait()
                if ticket.done:
                    break
                self._writing = True
                batch = self._take()
            try:
                self._write(batch)
            finally:
                with self._cond:
                    for taken in batch:  # the leader was interrupted mid-batch (BaseException)
                        if not taken.done:
                            taken.error, taken.done = RuntimeError("group commit interrupted"), True
                    self._writing = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.recordings

    def _take(self) -> list[_Ticket]:
        """The pending tickets that can share a transaction, oldest first (under the lock)."""
        batch: list[_Ticket] = []
        rest: list[_Ticket] = []
        touched: set[Any] = set()
        for ticket in self._pending:
            if len(batch) < MAX_BATCH and touched.isdisjoint(ticket.aggregates):
                batch.append(ticket)
                touched |= ticket.aggregates
            else:
                rest.append(ticket)
        self._pending = rest
        return batch

    def _write(self, batch: list[_Ticket]) -> None:
        try:
            self.transactions += 1
            recordings = self._put([e for ticket in batch for e in ticket.events])
        except DATABASE_LOST as exc:  # Postgres out of reach: every command of it fails
            self._finish(batch, error=exc)
            return
        except Exception as exc:  # a conflict, or one command's event the store refuses
            if len(batch) == 1:
                self._finish(batch, error=exc)
                return
            half = len(batch) // 2
            self._write(batch[:half])
            self._write(batch[half:])
            return
        start = 0
        for ticket in batch:
            end = start + len(ticket.events)
            ticket.recordings = recordings[start:end]
            start = end
        self.commands += len(batch)
        self._finish(batch)

    def _finish(self, batch: list[_Ticket], error: BaseException | None = None) -> None:
        with self._cond:
            for ticket in batch:
                ticket.error = error
                ticket.done = True
