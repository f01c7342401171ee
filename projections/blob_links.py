"""The blob links view: which blobs each repository may serve."""

from __future__ import annotations

from typing import Any

from domain.content import BlobLink, Repository

name = "blob_links"
tables = ("blob_links",)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, BlobLink.Linked | BlobLink.Relinked):
        cur.execute(
            "INSERT INTO blob_links (repository, digest, size, linked_at, linked_by)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (repository, digest) DO NOTHING",
            (event.repository, event.digest, event.size, event.timestamp, event.actor),
        )
    elif isinstance(event, BlobLink.Unlinked):
        cur.execute(
            "DELETE FROM blob_links WHERE repository = %s AND digest = %s",
            (event.repository, event.digest),
        )
    elif isinstance(event, Repository.Deleted):
        cur.execute("DELETE FROM blob_links WHERE repository = %s", (event.name,))


async def is_linked(conn: Any, repository: str, digest: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM blob_links WHERE repository = %s AND digest = %s", (repository, digest)
    )
    return await cur.fetchone() is not None


async def linked_anywhere(conn: Any, digest: str, namespaces: list[str] | None = None) -> bool:
    """Whether a repository links `digest` (with `namespaces`: one in those namespaces)."""
    if namespaces is None:
        cur = await conn.execute("SELECT 1 FROM blob_links WHERE digest = %s LIMIT 1", (digest,))
    else:
        cur = await conn.execute(
            "SELECT 1 FROM blob_links b JOIN repositories r ON r.name = b.repository"
            " WHERE b.digest = %s AND r.namespace = ANY(%s::text[]) LIMIT 1",
            (digest, namespaces),
        )
    return await cur.fetchone() is not None


async def existing(conn: Any, repository: str, digests: list[str]) -> set[str]:
    cur = await conn.execute(
        "SELECT digest FROM blob_links WHERE repository = %s AND digest = ANY(%s)",
        (repository, digests),
    )
    return {row[0] for row in await cur.fetchall()}
