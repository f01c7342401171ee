"""The history view: every event, in log order — the audit log."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from domain.documents import IDENTITY, event_fields, event_kind

name = "history"
tables = ("history",)
_COLUMNS = {"actor", "client", *IDENTITY}


def apply(cur: Any, event: Any, position: int) -> None:
    fields = event_fields(event)
    repository = fields.get("repository", fields.get("name"))
    digest = fields.get("digest", fields.get("to_digest"))
    details = {k: v for k, v in fields.items() if k not in _COLUMNS}
    cur.execute(
        "INSERT INTO history (position, occurred_at, type, actor, client, repository, tag,"
        " digest, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (position) DO NOTHING",
        (
            position,
            event.timestamp,
            event_kind(event),
            fields.get("actor", "system"),
            fields.get("client", ""),
            repository,
            fields.get("tag"),
            digest,
            Jsonb(details),
        ),
    )
