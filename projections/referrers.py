"""The referrers view: manifests that name another manifest as their `subject`."""

from __future__ import annotations

from typing import Any, NamedTuple

from psycopg.types.json import Jsonb

from domain.content import Manifest, Repository

name = "referrers"
tables = ("referrers",)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, Manifest.Pushed | Manifest.Repushed):
        if event.subject is None:
            return
        cur.execute(
            "INSERT INTO referrers (repository, subject, digest, media_type, artifact_type,"
            " size, annotations) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (repository, subject, digest) DO NOTHING",
            (
                event.repository,
                event.subject,
                event.digest,
                event.media_type,
                event.artifact_type,
                event.size,
                Jsonb(event.annotations),
            ),
        )
    elif isinstance(event, Manifest.Deleted):
        cur.execute(
            "DELETE FROM referrers WHERE repository = %s AND digest = %s",
            (event.repository, event.digest),
        )
    elif isinstance(event, Repository.Deleted):
        cur.execute("DELETE FROM referrers WHERE repository = %s", (event.name,))


async def of(
    conn: Any, repository: str, subject: str, artifact_type: str | None
) -> list[dict[str, Any]]:
    sql = (
        "SELECT media_type, digest, size, artifact_type, annotations FROM referrers"
        " WHERE repository = %s AND subject = %s"
    )
    params: list[Any] = [repository, subject]
    if artifact_type is not None:
        sql += " AND artifact_type = %s"
        params.append(artifact_type)
    cur = await conn.execute(sql + " ORDER BY digest", params)
    descriptors = []
    for media_type, digest, size, kind, notes in await cur.fetchall():
        descriptor: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
        if kind:
            descriptor["artifactType"] = kind
        if notes:
            descriptor["annotations"] = notes
        descriptors.append(descriptor)
    return descriptors


class Referrer(NamedTuple):
    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    annotations: dict[str, str]


# Details list a few referrers, each with small annotations (a cosign bundle takes ~5 KiB):
# a subject may have any number of them, each with up to 4 MiB of annotations.
ANNOTATIONS_MAX = 32 * 1024  # bytes of annotations (as JSON) shown with a referrer
TEXT_MAX = 255  # characters of its media and artifact types


async def first(conn: Any, repository: str, subject: str, limit: int) -> tuple[list[Referrer], int]:
    """The first `limit` referrers of `subject` (by digest) and how many there are; the
    annotations of one are left out ({}) when they exceed ANNOTATIONS_MAX."""
    cur = await conn.execute(
        "SELECT digest, left(media_type, %s), left(artifact_type, %s), size,"
        " CASE WHEN octet_length(annotations::text) <= %s THEN annotations ELSE '{}' END,"
        " count(*) OVER () FROM referrers WHERE repository = %s AND subject = %s"
        " ORDER BY digest LIMIT %s",
        (TEXT_MAX, TEXT_MAX, ANNOTATIONS_MAX, repository, subject, limit),
    )
    rows = await cur.fetchall()
    return [Referrer(*row[:-1]) for row in rows], rows[0][-1] if rows else 0
