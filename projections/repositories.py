"""The repositories view: one row per live repository."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from domain.content import BlobLink, Manifest, Repository, Tag
from projections import keyset

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
        "SELECT name, namespace, created_at, created_by, updated_at,"
        " (SELECT count(*) FROM tags t WHERE t.repository = r.name)"
        f" FROM repositories r{where} ORDER BY {order_by} LIMIT %s",
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
