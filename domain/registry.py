"""The registry's eventsourcing Application: the command groups (`domain.commands`) over the
aggregates, stored in one event store.

Importing it registers the topics of classes that moved (`domain.topics`), so events stored
under their old names stay readable.
"""

from __future__ import annotations

from eventsourcing.persistence import Transcoder

from domain import topics  # noqa: F401  (registers moved classes' old topics)
from domain.commands.access_tokens import AccessTokenCommands
from domain.commands.content import ContentCommands
from domain.commands.identity import IdentityCommands
from domain.commands.namespaces import NamespaceCommands
from domain.commands.pulls import PullCommands
from domain.content import Tag
from domain.pulls import Pulls
from domain.transcoder import MsgpackTranscoder


class Registry(
    ContentCommands, IdentityCommands, NamespaceCommands, AccessTokenCommands, PullCommands
):
    name = "Registry"
    # Only tags move often ("latest" on every build) and pulls are counted all day (an event
    # per replica and flush interval); the other aggregates live a few events, and without
    # snapshots a missing one costs one query, not two.
    snapshotting_intervals = {Tag: 50, Pulls: 100}

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()
