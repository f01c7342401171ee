"""The blob links view: which blobs each repository may serve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.content import BlobLink, Repository
from projections import batch

name = "blob_links"
tables = ("blob_links",)
_kind = batch.Kinds(
    {
        BlobLink.Linked: "link",
        BlobLink.Relinked: "link",
        BlobLink.Unlinked: "unlink",
        Repository.Deleted: "drop",
    }
)
_LINKED = batch.Rows(
    "repository text, digest text, size bigint, linked_at timestamptz, linked_by text"
)
_KEYS = batch.Rows("repository text, digest text")
_LINK = (
    "INSERT INTO blob_links (repository, digest, size, linked_at, linked_by)"
    f" SELECT * FROM {_LINKED.sql} ON CONFLICT (repository, digest) DO NOTHING"
)
_UNLINK = f"DELETE FROM blob_links WHERE (repository, digest) IN (SELECT * FROM {_KEYS.sql})"
_DROP = "DELETE FROM blob_links WHERE repository = ANY(%s::text[])"


def apply_batch(cur: Any, items: Sequence[batch.Item]) -> None:
    for kind, run in batch.runs(items, _kind):
        if kind == "link":
            rows = batch.first_by(run, lambda e: (e.repository, e.digest))
            cur.execute(
                _LINK,
                _LINKED.params(
                    (e.repository, e.digest, e.size, e.timestamp, e.actor) for e, _ in rows
                ),
            )
        elif kind == "unlink":
            cur.execute(_UNLINK, _KEYS.params((e.repository, e.digest) for e, _ in run))
        else:
            cur.execute(_DROP, ([e.name for e, _ in run],))


apply = batch.apply_one(apply_batch)


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
