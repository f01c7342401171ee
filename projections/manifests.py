"""The manifests view: every live manifest of every repository, with what it references."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from psycopg.types.json import Jsonb

from domain.content import Manifest, Repository
from projections import batch

name = "manifests"
tables = ("manifests",)


# what a manifest view does with each event (the referrers view too)
KINDS = batch.Kinds(
    {
        Manifest.Pushed: "push",
        Manifest.Repushed: "push",
        Manifest.Deleted: "delete",
        Repository.Deleted: "drop",
    }
)
_PUSHED = batch.Rows(
    "repository text, digest text, media_type text, size bigint, config jsonb, layers jsonb,"
    " children jsonb, subject text, artifact_type text, annotations jsonb,"
    " pushed_at timestamptz, pushed_by text"
)
_KEYS = batch.Rows("repository text, digest text")
_PUSH = (
    "INSERT INTO manifests (repository, digest, media_type, size, config, layers,"
    " children, subject, artifact_type, annotations, pushed_at, pushed_by)"
    f" SELECT * FROM {_PUSHED.sql} ON CONFLICT (repository, digest) DO NOTHING"
)
_DELETE = f"DELETE FROM manifests WHERE (repository, digest) IN (SELECT * FROM {_KEYS.sql})"
_DROP = "DELETE FROM manifests WHERE repository = ANY(%s::text[])"


def _row(event: Any) -> tuple[Any, ...]:
    return (
        event.repository,
        event.digest,
        event.media_type,
        event.size,
        event.config,
        event.layers,
        event.manifests,
        event.subject,
        event.artifact_type,
        event.annotations,
        event.timestamp,
        event.actor,
    )


def apply_batch(cur: Any, items: Sequence[batch.Item]) -> None:
    for kind, run in batch.runs(items, KINDS):
        if kind == "push":
            rows = batch.first_by(run, lambda e: (e.repository, e.digest))
            cur.execute(_PUSH, _PUSHED.params(_row(e) for e, _ in rows))
        elif kind == "delete":
            cur.execute(_DELETE, _KEYS.params((e.repository, e.digest) for e, _ in run))
        else:
            cur.execute(_DROP, ([e.name for e, _ in run],))


apply = batch.apply_one(apply_batch)


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
# A manifest may list one layer (an index one platform) thousands of times, and 4 MiB of
# manifest hold ~25,000 descriptors: details count and page the distinct digests here, each
# where it first appears (as domain.manifests.distinct), and never bring a whole list, nor a
# descriptor's free-form fields, into the API process. Text a pusher chose is cut at TEXT_MAX
# characters (a media type has at most 255, RFC 6838).
TEXT_MAX = 255


class Summary(NamedTuple):
    digest: str
    media_type: str
    size: int
    config: dict[str, Any] | None  # digest, size and mediaType only
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str]
    pushed_at: datetime
    pushed_by: str
    layer_count: int  # distinct layers
    platform_count: int  # distinct platforms (an index)


class LayerEntry(NamedTuple):
    position: int  # where its digest first appears in the manifest's layers (from 1)
    digest: str
    size: int
    media_type: str


class PlatformEntry(NamedTuple):
    position: int  # where its digest first appears in the index's manifests (from 1)
    digest: str
    size: int
    media_type: str
    os: str | None
    architecture: str | None
    variant: str | None


def _distinct(column: str) -> str:
    return f"(SELECT count(DISTINCT e->>'digest') FROM jsonb_array_elements(m.{column}) AS e)"


def _firsts(column: str) -> str:
    """The elements of m.<column> whose digest appears there first, after position %s, in
    order, at most %s of them."""
    return (
        "SELECT ord, d FROM (SELECT DISTINCT ON (d->>'digest') ord, d"
        f" FROM jsonb_array_elements(m.{column}) WITH ORDINALITY AS e(d, ord)"
        " ORDER BY d->>'digest', ord) AS firsts WHERE ord > %s ORDER BY ord LIMIT %s"
    )


def _text(path: str) -> str:
    """A string of a descriptor, cut at TEXT_MAX; NULL when absent or not a string."""
    return f"CASE WHEN jsonb_typeof({path}) = 'string' THEN left({path} #>> '{{}}', {TEXT_MAX}) END"


_CONFIG_TYPE = _text("m.config->'mediaType'")
_CONFIG = (
    "CASE WHEN m.config IS NULL THEN NULL ELSE jsonb_build_object('digest', m.config->'digest',"
    f" 'size', m.config->'size', 'mediaType', {_CONFIG_TYPE}) END"
)
_LAYER = ", ".join(["p.d->>'digest'", "(p.d->>'size')::bigint", _text("p.d->'mediaType'")])
_PLATFORM = ", ".join(
    [_LAYER, *(_text(f"p.d->'platform'->'{key}'") for key in ("os", "architecture", "variant"))]
)


async def summaries(conn: Any, repository: str, digests: list[str]) -> dict[str, Summary]:
    cur = await conn.execute(
        f"SELECT digest, media_type, size, {_CONFIG}, subject, artifact_type, annotations,"
        f" pushed_at, pushed_by, {_distinct('layers')}, {_distinct('children')}"
        " FROM manifests m WHERE repository = %s AND digest = ANY(%s::text[])",
        (repository, digests),
    )
    return {row[0]: Summary(*row) for row in await cur.fetchall()}


async def layer_pages(
    conn: Any, repository: str, digests: list[str], after: int, limit: int
) -> dict[str, list[LayerEntry]]:
    """For each manifest of `digests`: its distinct layers after `after`, `limit` at most."""
    cur = await conn.execute(
        f"SELECT m.digest, p.ord, {_LAYER}"
        f" FROM manifests m CROSS JOIN LATERAL ({_firsts('layers')}) AS p"
        " WHERE m.repository = %s AND m.digest = ANY(%s::text[]) ORDER BY m.digest, p.ord",
        (after, limit, repository, digests),
    )
    found: dict[str, list[LayerEntry]] = {digest: [] for digest in digests}
    for digest, *entry in await cur.fetchall():
        found[digest].append(LayerEntry(*entry))
    return found


async def platform_page(
    conn: Any, repository: str, digest: str, after: int, limit: int
) -> list[PlatformEntry]:
    """The distinct platforms of an index after `after`, `limit` at most."""
    cur = await conn.execute(
        f"SELECT p.ord, {_PLATFORM}"
        f" FROM manifests m CROSS JOIN LATERAL ({_firsts('children')}) AS p"
        " WHERE m.repository = %s AND m.digest = %s ORDER BY p.ord",
        (after, limit, repository, digest),
    )
    return [PlatformEntry(*row) for row in await cur.fetchall()]


async def lists_platform(conn: Any, repository: str, index: str, digest: str) -> bool:
    """Whether the index `index` of `repository` lists `digest` as one of its platforms."""
    cur = await conn.execute(
        "SELECT 1 FROM manifests WHERE repository = %s AND digest = %s AND children @> %s::jsonb",
        (repository, index, Jsonb([{"digest": digest}])),
    )
    return await cur.fetchone() is not None


async def parents(conn: Any, repository: str, digest: str) -> list[str]:
    """Live indexes of `repository` that list `digest` as one of their platforms."""
    cur = await conn.execute(
        "SELECT digest FROM manifests WHERE repository = %s AND children @> %s::jsonb",
        (repository, Jsonb([{"digest": digest}])),
    )
    return [row[0] for row in await cur.fetchall()]
