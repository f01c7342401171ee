"""The repositories view: one row per live repository."""

from __future__ import annotations

from typing import Any

from domain.aggregates import BlobLink, Manifest, Repository, Tag

name = "repositories"
tables = ("repositories",)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, Repository.Created | Repository.Recreated):
        cur.execute(
            "INSERT INTO repositories (name, created_at, created_by, updated_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
            (event.name, event.timestamp, event.actor, event.timestamp),
        )
    elif isinstance(event, Repository.Deleted):
        cur.execute("DELETE FROM repositories WHERE name = %s", (event.name,))
    elif isinstance(
        event,
        Manifest.Pushed
        | Manifest.Repushed
        | Tag.Created
        | Tag.Moved
        | BlobLink.Linked
        | BlobLink.Relinked,
    ):
        cur.execute(
            "UPDATE repositories SET updated_at = %s WHERE name = %s",
            (event.timestamp, event.repository),
        )


async def exists(conn: Any, repository: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM repositories WHERE name = %s", (repository,))
    return await cur.fetchone() is not None


async def catalog(
    conn: Any, last: str, limit: int, namespaces: list[str] | None = None
) -> list[str]:
    """Repository names after `last`; with `namespaces`, only those named like one of them
    or under one of them (`ns`, `ns/...`)."""
    if namespaces is None:
        cur = await conn.execute(
            "SELECT name FROM repositories WHERE name > %s ORDER BY name LIMIT %s", (last, limit)
        )
    else:
        cur = await conn.execute(
            "SELECT name FROM repositories WHERE name > %s AND (name = ANY(%s::text[])"
            " OR EXISTS (SELECT 1 FROM unnest(%s::text[]) AS p WHERE starts_with(name, p)))"
            " ORDER BY name LIMIT %s",
            (last, namespaces, [f"{ns}/" for ns in namespaces], limit),
        )
    return [row[0] for row in await cur.fetchall()]
