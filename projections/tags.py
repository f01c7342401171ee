"""The tags view: where each tag points now."""

from __future__ import annotations

from typing import Any

from domain.content import Manifest, Repository, Tag

name = "tags"
tables = ("tags",)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, Tag.Created | Tag.Moved):
        cur.execute(
            "INSERT INTO tags (repository, tag, digest, updated_at, updated_by)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (repository, tag) DO UPDATE SET"
            " digest = EXCLUDED.digest, updated_at = EXCLUDED.updated_at,"
            " updated_by = EXCLUDED.updated_by",
            (event.repository, event.tag, event.to_digest, event.timestamp, event.actor),
        )
    elif isinstance(event, Tag.Deleted):
        cur.execute(
            "DELETE FROM tags WHERE repository = %s AND tag = %s", (event.repository, event.tag)
        )
    elif isinstance(event, Manifest.Deleted):
        # The command deletes the tags it knew of; never leave one pointing at nothing.
        cur.execute(
            "DELETE FROM tags WHERE repository = %s AND digest = %s",
            (event.repository, event.digest),
        )
    elif isinstance(event, Repository.Deleted):
        cur.execute("DELETE FROM tags WHERE repository = %s", (event.name,))


async def page(conn: Any, repository: str, last: str, limit: int | None) -> list[str]:
    cur = await conn.execute(
        "SELECT tag FROM tags WHERE repository = %s AND tag > %s ORDER BY tag LIMIT %s",
        (repository, last, limit),
    )
    return [row[0] for row in await cur.fetchall()]


async def pointing_at(conn: Any, repository: str, digest: str) -> list[str]:
    cur = await conn.execute(
        "SELECT tag FROM tags WHERE repository = %s AND digest = %s", (repository, digest)
    )
    return [row[0] for row in await cur.fetchall()]
