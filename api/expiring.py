"""A bounded map whose entries expire: the one shape of every per-process cache of verified
credentials (tokens, /api sessions, revoked sessions, passwords)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ExpiringMap(Generic[K, V]):
    """Values with an expiry time on `clock`; an expired value is never answered.

    At most `max_entries`: a full map first forgets what expired, then its oldest entries
    down to three quarters full, so the pruning pass (a walk of the whole map) comes once per
    quarter of puts under a flood of distinct keys, not on every put."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K, now: float | None = None) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if (self.clock() if now is None else now) >= found[1]:
            self._entries.pop(key, None)
            return None
        return found[0]

    def put(self, key: K, value: V, expires: float, now: float | None = None) -> None:
        self._entries.pop(key, None)
        if len(self._entries) >= self.max_entries:
            now = self.clock() if now is None else now
            self._entries = {k: e for k, e in self._entries.items() if now < e[1]}
            if len(self._entries) >= self.max_entries:
                keep = self.max_entries - max(1, self.max_entries // 4)
                for oldest in list(self._entries)[: len(self._entries) - keep]:
                    del self._entries[oldest]
        self._entries[key] = (value, expires)

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> Iterator[V]:
        return (value for value, _ in self._entries.values())
