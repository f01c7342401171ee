"""The repositories view: one row per live repository."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from domain.content import BlobLink, Manifest, Repository, Tag
from projections import batch, keyset

name = "repositories"
tables = ("repositories",)


_kind = batch.Kinds(
    {
        Repository.Created: "create",
        Repository.Recreated: "create",
        Repository.Deleted: "delete",
        # what changes a repository's content: its last update
        Manifest.Pushed: "touch",
        Manifest.Repushed: "touch",
        Tag.Created: "touch",
        Tag.Moved: "touch",
        BlobLink.Linked: "touch",
        BlobLink.Relinked: "touch",
    }
)
_CREATED = batch.Rows("name text, created_at timestamptz, created_by text, updated_at timestamptz")
_TOUCHED = batch.Rows("name text, at timestamptz")
_CREATE = (
    "INSERT INTO repositories (name, created_at, created_by, updated_at)"
    f" SELECT * FROM {_CREATED.sql} ON CONFLICT (name) DO NOTHING"
)
_DELETE = "DELETE FROM repositories WHERE name = ANY(%s::text[])"
_TOUCH = f"UPDATE repositories r SET updated_at = u.at FROM {_TOUCHED.sql} WHERE r.name = u.name"


def apply_batch(cur: Any, items: Sequence[batch.Item]) -> None:
    for kind, run in batch.runs(items, _kind):
        if kind == "create":
            rows = batch.first_by(run, lambda e: e.name)
            created = _CREATED.params((e.name, e.timestamp, e.actor, e.timestamp) for e, _ in rows)
            cur.execute(_CREATE, created)
        elif kind == "delete":
            cur.execute(_DELETE, ([e.name for e, _ in run],))
        else:  # each sets the time: the last of a repository's is its time
            rows = batch.last_by(run, lambda e: e.repository)
            cur.execute(_TOUCH, _TOUCHED.params((e.repository, e.timestamp) for e, _ in rows))


apply = batch.apply_one(apply_batch)


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


# -- the management API's listing (GET /api/repositories) ----------------------------------
class RepositoryRow(NamedTuple):
    name: str
    namespace: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    tag_count: int


SORTS = {"name": ("name",), "updated": ("updated_at", "name")}
DEFAULT_ORDER = {"name": "asc", "updated": "desc"}


_ROW = (
    "SELECT name, namespace, created_at, created_by, updated_at,"
    " (SELECT count(*) FROM tags t WHERE t.repository = r.name) FROM repositories r"
)


async def get(conn: Any, repository: str) -> RepositoryRow | None:
    """One repository with its number of tags; None if it does not exist."""
    cur = await conn.execute(f"{_ROW} WHERE name = %s", (repository,))
    row = await cur.fetchone()
    return RepositoryRow(*row) if row else None


async def listing(
    conn: Any,
    readable: list[str] | None,
    namespace: str | None,
    sort: str,
    order: str,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[RepositoryRow]:
    """A page of repositories in keyset order, each with its number of tags."""
    where, params = " WHERE true", []
    if readable is not None:
        where += " AND namespace = ANY(%s::text[])"
        params.append(readable)
    if namespace is not None:
        where += " AND namespace = %s"
        params.append(namespace)
    following, order_by = keyset.clause(SORTS[sort], order)
    if after is not None:
        where += f" AND {following}"
        params += list(after)
    cur = await conn.execute(
        f"{_ROW}{where} ORDER BY {order_by} LIMIT %s",
        [*params, limit],
    )
    return [RepositoryRow(*row) for row in await cur.fetchall()]


async def contents(conn: Any, repository: str) -> tuple[list[str], list[str], list[str]]:
    """(tags, manifest digests, blob digests) of a repository: what deleting it deletes."""
    found = []
    for sql in (
        "SELECT tag FROM tags WHERE repository = %s ORDER BY tag",
        "SELECT digest FROM manifests WHERE repository = %s ORDER BY digest",
        "SELECT digest FROM blob_links WHERE repository = %s ORDER BY digest",
    ):
        cur = await conn.execute(sql, (repository,))
        found.append([row[0] for row in await cur.fetchall()])
    return found[0], found[1], found[2]
