"""The notifications this process committed lately, for the readers of the log in it (the
projection runner, the relay): the events after a position without a query, when they are
all here.

Only a run of ids with no gap, starting right after the reader's position, is answered: each
id in it was committed (it is added once its transaction has), so nothing before its end can
still appear. A gap (another process' transaction, ids a rolled-back insert took) or a
position older than what is kept is no answer: the reader asks the database, as it would
without this. Bounded by count and by bytes, the oldest going first.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

MAX_NOTIFICATIONS = 2048
MAX_BYTES = 4 * 1024 * 1024


class RecentLog:
    def __init__(self, max_notifications: int = MAX_NOTIFICATIONS, max_bytes: int = MAX_BYTES):
        self.max_notifications = max_notifications
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._by_id: dict[int, Any] = {}
        self._order: deque[int] = deque()
        self._bytes = 0

    def add(self, notifications: Sequence[Any]) -> None:
        """Notifications of a transaction that has committed."""
        with self._lock:
            for n in notifications:
                if n.id in self._by_id:
                    continue
                self._by_id[n.id] = n
                self._order.append(n.id)
                self._bytes += len(n.state)
            while self._order and (
                len(self._order) > self.max_notifications or self._bytes > self.max_bytes
            ):
                old = self._by_id.pop(self._order.popleft())
                self._bytes -= len(old.state)

    def after(self, position: int, limit: int) -> list[Any]:
        """The notifications after `position`, in order, up to the first id not kept (at
        most `limit`); empty if the next one is not here."""
        found = []
        with self._lock:
            by_id = self._by_id
            while len(found) < limit and (n := by_id.get(position + 1)) is not None:
                found.append(n)
                position += 1
        return found
