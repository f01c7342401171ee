"""The manifests view: every live manifest of every repository, with what it references."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from psycopg.types.json import Jsonb

from domain.aggregates import Manifest, Repository

name = "manifests"
tables = ("manifests",)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, Manifest.Pushed | Manifest.Repushed):
        cur.execute(
            "INSERT INTO manifests (repository, digest, media_type, size, config, layers,"
            " children, subject, artifact_type, annotations, pushed_at, pushed_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (repository, digest) DO NOTHING",
            (
                event.repository,
                event.digest,
                event.media_type,
                event.size,
                Jsonb(event.config) if event.config is not None else None,
                Jsonb(event.layers),
                Jsonb(event.manifests),
                event.subject,
                event.artifact_type,
                Jsonb(event.annotations),
                event.timestamp,
                event.actor,
            ),
        )
    elif isinstance(event, Manifest.Deleted):
        cur.execute(
            "DELETE FROM manifests WHERE repository = %s AND digest = %s",
            (event.repository, event.digest),
        )
    elif isinstance(event, Repository.Deleted):
        cur.execute("DELETE FROM manifests WHERE repository = %s", (event.name,))


class Found(NamedTuple):
    digest: str
    media_type: str
    size: int


async def by_digest(conn: Any, repository: str, digest: str) -> Found | None:
    cur = await conn.execute(
        "SELECT digest, media_type, size FROM manifests WHERE repository = %s AND digest = %s",
        (repository, digest),
    )
    row = await cur.fetchone()
    return Found(*row) if row else None


async def by_tag(conn: Any, repository: str, tag: str) -> Found | None:
    cur = await conn.execute(
        "SELECT m.digest, m.media_type, m.size FROM tags t JOIN manifests m"
        " ON m.repository = t.repository AND m.digest = t.digest"
        " WHERE t.repository = %s AND t.tag = %s",
        (repository, tag),
    )
    row = await cur.fetchone()
    return Found(*row) if row else None


async def existing(conn: Any, repository: str, digests: list[str]) -> set[str]:
    cur = await conn.execute(
        "SELECT digest FROM manifests WHERE repository = %s AND digest = ANY(%s)",
        (repository, digests),
    )
    return {row[0] for row in await cur.fetchall()}


# -- details for the management API --------------------------------------------------------
class Detail(NamedTuple):
    digest: str
    media_type: str
    size: int
    config: dict[str, Any] | None
    layers: list[dict[str, Any]]
    children: list[dict[str, Any]]
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str]
    pushed_at: datetime
    pushed_by: str


async def details(conn: Any, repository: str, digests: list[str]) -> dict[str, Detail]:
    cur = await conn.execute(
        f"SELECT {', '.join(Detail._fields)} FROM manifests"
        " WHERE repository = %s AND digest = ANY(%s::text[])",
        (repository, digests),
    )
    return {row[0]: Detail(*row) for row in await cur.fetchall()}


async def parents(conn: Any, repository: str, digest: str) -> list[str]:
    """Live indexes of `repository` that list `digest` as one of their platforms."""
    cur = await conn.execute(
        "SELECT digest FROM manifests WHERE repository = %s AND children @> %s::jsonb",
        (repository, Jsonb([{"digest": digest}])),
    )
    return [row[0] for row in await cur.fetchall()]
