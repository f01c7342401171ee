"""What every group of commands stands on: loading an aggregate by its natural name, running
a command with conflict retries, and the few look-ups one group needs of another's
aggregates (does a user exist, open a namespace, revoke tokens)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import RecordConflictError, Recording

from domain.access_tokens import AccessToken
from domain.caller import Caller
from domain.commands.group_commit import GroupCommit
from domain.commands.loading import Loader
from domain.errors import ConcurrentUpdate
from domain.identity import User, is_valid_username
from domain.names import namespace_of
from domain.namespaces import Namespace

T = TypeVar("T")
MAX_ATTEMPTS = 30


class Commands(Application):
    """The base of the `Registry` application and of its command groups (mixed into it).

    A command loads the aggregates it touches, triggers events and saves them in one
    transaction. An optimistic-concurrency conflict (another writer saved the same aggregate
    version first) is retried with fresh state; within one process, commands on the same key
    (a repository, a user, a namespace) take turns so they do not conflict with each other.
    Every `save()` of the process goes through one group commit (`group_commit`): what
    concurrent commands save is stored in one transaction, each keeping its own recordings
    and its own conflicts.
    """

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._stripes = [threading.Lock() for _ in range(64)]
        self.group_commit = GroupCommit(lambda events: self.events.put(events))
        self._loader = Loader(self)

    def _record(self, processing_event: ProcessingEvent[Any]) -> list[Recording[Any]]:
        """`Application._record` through the group commit (snapshots and the rest of
        `save()` stay as they are)."""
        if processing_event.tracking is not None or processing_event.saved_kwargs:
            return super()._record(processing_event)
        if not processing_event.events:
            return []
        recordings = list(self.group_commit.save(processing_event.events))
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        return recordings

    def _get(self, cls: type[T], *key: str) -> T | None:
        (found,) = self._get_all((cls, key))
        return found

    def _get_all(self, *wanted: tuple[type, tuple[str, ...]]) -> list[Any]:
        """The aggregates (class, natural key) wanted, None for those that do not exist; in
        one round trip (domain.commands.loading)."""
        return self._loader.load([(cls, cls.create_id(*key)) for cls, key in wanted])  # type: ignore[attr-defined]

    def _command(self, key: str, body: Callable[[], list[Any]]) -> int | None:
        """Run `body` (which returns changed aggregates), save, retry on conflicts.

        Returns the notification position of the last stored event, or None if nothing
        changed (an idempotent repeat).
        """
        lock = self._stripes[hash(key) % len(self._stripes)]
        for attempt in range(MAX_ATTEMPTS):
            with lock:
                aggregates = [a for a in body() if a is not None]
                if not aggregates:
                    return None
                try:
                    recordings = self.save(*aggregates)
                except RecordConflictError:
                    pass
                else:
                    return recordings[-1].notification.id if recordings else None
            time.sleep(random.uniform(0.001, 0.005) * (attempt + 1))
        raise ConcurrentUpdate(key)

    # -- shared by the command groups ------------------------------------------------------
    def _user_exists(self, username: str) -> bool:
        return is_valid_username(username) and self._get(User, username) is not None

    def _opened(
        self, name: str, owner: str, personal: bool, public: bool, caller: Caller
    ) -> Namespace | None:
        """A new namespace (or a deleted one's name taken again); None if it exists."""
        return self._reopened(self._get(Namespace, name), name, owner, personal, public, caller)

    @staticmethod
    def _reopened(
        found: Namespace | None,
        name: str,
        owner: str,
        personal: bool,
        public: bool,
        caller: Caller,
    ) -> Namespace | None:
        """`_opened` for the namespace as already read (`found`)."""
        if found is None:
            return Namespace.open(name, owner, personal, public, *caller)
        if found.alive:
            return None
        found.reopen(owner, personal, public, *caller)
        return found

    def _missing_namespace(self, repository: str, caller: Caller) -> Namespace | None:
        """The namespace `repository` needs, if it does not exist yet (a push creates it)."""
        return self._opened(namespace_of(repository), "", False, False, caller)

    def _revoked(self, token_ids: list[str], caller: Caller) -> list[Any]:
        """These tokens, revoked (those that were not already)."""
        changed = []
        for token_id in token_ids:
            token = self._get(AccessToken, token_id)
            if token is not None and not token.revoked:
                token.revoke(*caller)
                changed.append(token)
        return changed
