"""The upload sessions one process opened: who opened them, for which repository, and the
incremental hash of each. Bounded: a session over a cap is refused (TooManyUploads); a
session whose file is gone (finished, cancelled or purged, here or in another process) is
forgotten, with its hash state, the next time the sessions are pruned."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from storage.errors import TooManyUploads
from storage.page_cache import CachedFile


@dataclass
class Hashing:
    """The sha256 of an upload's bytes so far (`offset` of them): no re-read on completion."""

    offset: int = 0
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256)


@dataclass
class Session:
    path: Path
    repository: str
    owner: str
    hashing: Hashing | None = field(default_factory=Hashing)
    # what of its file this process synced and left in the page cache
    cached: CachedFile = field(init=False)

    def __post_init__(self) -> None:
        self.cached = CachedFile(self.path)


class OpenUploads:
    """Thread-safe (the purge runs in a thread); caps of 0 mean no cap."""

    def __init__(self, per_owner: int = 0, per_repository: int = 0) -> None:
        self.per_owner = per_owner
        self.per_repository = per_repository
        self._sessions: dict[str, Session] = {}
        self._owners: Counter[str] = Counter()
        self._repositories: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def _full(self, repository: str, owner: str) -> str | None:
        if self.per_owner and owner and self._owners[owner] >= self.per_owner:
            return "user"
        if self.per_repository and self._repositories[repository] >= self.per_repository:
            return "repository"
        return None

    def add(self, upload_id: str, session: Session) -> None:
        """Count a new session; TooManyUploads if its owner or repository has too many open
        (after forgetting those whose files are gone)."""
        with self._lock:
            full = self._full(session.repository, session.owner)
            if full is not None:
                self._prune()
                full = self._full(session.repository, session.owner)
            if full is not None:
                limit = self.per_owner if full == "user" else self.per_repository
                raise TooManyUploads(full, limit)
            self._sessions[upload_id] = session
            self._owners[session.owner] += 1
            self._repositories[session.repository] += 1

    def get(self, upload_id: str) -> Session | None:
        return self._sessions.get(upload_id)

    def hashing(self, upload_id: str) -> Hashing | None:
        session = self._sessions.get(upload_id)
        return session.hashing if session is not None else None

    def drop_hashing(self, upload_id: str) -> None:
        """The file changed elsewhere: its hash is computed from the file on completion."""
        session = self._sessions.get(upload_id)
        if session is not None:
            session.hashing = None

    def remove(self, upload_id: str) -> None:
        with self._lock:
            self._remove(upload_id)

    def _remove(self, upload_id: str) -> None:
        session = self._sessions.pop(upload_id, None)
        if session is None:
            return
        for counter, key in (
            (self._owners, session.owner),
            (self._repositories, session.repository),
        ):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    def prune(self) -> int:
        """Forget sessions whose file is gone; returns how many."""
        with self._lock:
            return self._prune()

    def _prune(self) -> int:
        gone = [upload_id for upload_id, s in self._sessions.items() if not s.path.exists()]
        for upload_id in gone:
            self._remove(upload_id)
        return len(gone)
