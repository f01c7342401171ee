"""Recording the pulls an API process counted (domain.pulls): one event per repository and
flush, many repositories in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.caller import Caller
from domain.commands.base import Commands
from domain.content import Repository
from domain.pulls import PullBatch, Pulls


class PullCommands(Commands):
    """The pull commands of the `Registry` application (mixed into it)."""

    def count_pulls(self, batches: Sequence[PullBatch], caller: Caller) -> int | None:
        """Record each batch (of distinct repositories) on its repository's `Pulls`, in one
        transaction; a batch recorded already (a flush tried again) and the pulls of a
        repository deleted since (its counts went with it) change nothing. Returns the
        position of the last event stored, or None when none was."""
        batches = list({batch.repository: batch for batch in batches}.values())

        def body() -> list[Any]:
            found = self._get_all(
                *[(Pulls, (batch.repository,)) for batch in batches],
                *[(Repository, (batch.repository,)) for batch in batches],
            )
            changed = []
            for batch, pulls, repo in zip(
                batches, found[: len(batches)], found[len(batches) :], strict=True
            ):
                if repo is None or not repo.alive:
                    continue
                changed.append(Pulls.record(pulls, batch, *caller))
            return changed

        # Flushes run one at a time per process: one stripe serves them all.
        return self._command("pulls", body)
