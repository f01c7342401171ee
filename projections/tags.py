"""The tags view: where each tag points now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.content import Manifest, Repository, Tag
from projections import batch

name = "tags"
tables = ("tags",)


_kind = batch.Kinds(
    {
        Tag.Created: "set",
        Tag.Moved: "set",
        Tag.Deleted: "delete",
        Manifest.Deleted: "delete manifest",
        Repository.Deleted: "drop",
    }
)
_SETS = batch.Rows(
    "repository text, tag text, digest text, updated_at timestamptz, updated_by text"
)
_TAGS = batch.Rows("repository text, tag text")
_MANIFESTS = batch.Rows("repository text, digest text")
_SET = (
    "INSERT INTO tags (repository, tag, digest, updated_at, updated_by)"
    f" SELECT * FROM {_SETS.sql} ON CONFLICT (repository, tag) DO UPDATE SET"
    " digest = EXCLUDED.digest, updated_at = EXCLUDED.updated_at,"
    " updated_by = EXCLUDED.updated_by"
)
_DELETE = f"DELETE FROM tags WHERE (repository, tag) IN (SELECT * FROM {_TAGS.sql})"
# The command deletes the tags it knew of; never leave one pointing at nothing.
_DELETE_MANIFEST = (
    f"DELETE FROM tags WHERE (repository, digest) IN (SELECT * FROM {_MANIFESTS.sql})"
)
_DROP = "DELETE FROM tags WHERE repository = ANY(%s::text[])"


def apply_batch(cur: Any, items: Sequence[batch.Item]) -> None:
    for kind, run in batch.runs(items, _kind):
        if kind == "set":  # each overwrites the row: the last of a tag is where it points
            rows = batch.last_by(run, lambda e: (e.repository, e.tag))
            cur.execute(
                _SET,
                _SETS.params(
                    (e.repository, e.tag, e.to_digest, e.timestamp, e.actor) for e, _ in rows
                ),
            )
        elif kind == "delete":
            cur.execute(_DELETE, _TAGS.params((e.repository, e.tag) for e, _ in run))
        elif kind == "delete manifest":
            keys = _MANIFESTS.params((e.repository, e.digest) for e, _ in run)
            cur.execute(_DELETE_MANIFEST, keys)
        else:
            cur.execute(_DROP, ([e.name for e, _ in run],))


apply = batch.apply_one(apply_batch)


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
