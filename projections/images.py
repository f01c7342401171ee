"""The images view: every tag with what the management API lists, sorts and searches by
(digest, media type, total size, last update), and each manifest's total size.

The total size of an image manifest is its own size plus each distinct blob it references
(config and layers, a repeated one once); of an index, its own size plus each distinct
platform's total (they are pushed before the index, so their rows are here; a layer shared
by two platforms counts in each, as each platform is pulled on its own). The view keeps its
own manifest sizes rather than reading the manifests view, so it can be replayed on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from domain.content import Manifest, Repository, Tag
from domain.manifests import image_size
from projections import batch, keyset

name = "images"
tables = ("images", "image_manifests")


def _total(event: Any) -> int:
    return image_size(event.size, event.config, event.layers)


_kinds = batch.Kinds(
    {
        Manifest.Pushed: "content",
        Manifest.Repushed: "content",
        Tag.Created: "content",
        Tag.Moved: "content",
        Tag.Deleted: "untag",
        Manifest.Deleted: "delete",
        Repository.Deleted: "drop",
    }
)


def _kind(event: Any) -> str | None:
    """An index is projected alone: its size adds its platforms', which must be here."""
    kind = _kinds(event)
    if kind == "content" and isinstance(event, Manifest.Pushed | Manifest.Repushed):
        return "index" if event.manifests else kind
    return kind


_INDEX = (
    "INSERT INTO image_manifests (repository, digest, media_type, artifact_type, size)"
    " VALUES (%s, %s, %s, %s, %s + (SELECT coalesce(sum(size), 0) FROM image_manifests"
    " WHERE repository = %s AND digest = ANY(%s::text[])))"
    " ON CONFLICT (repository, digest) DO NOTHING"
)
_PUSHED = batch.Rows(
    "repository text, digest text, media_type text, artifact_type text, size bigint,"
    " position bigint"
)
_TAGGED = batch.Rows(
    "repository text, tag text, digest text, updated_at timestamptz, updated_by text,"
    " position bigint",
    alias="t",
)
_TAGS = batch.Rows("repository text, tag text")
_KEYS = batch.Rows("repository text, digest text")
# Image manifests pushed and tags set, in one statement. A tag takes its manifest's row as
# it was when the tag was set: the row that was there before the batch, else the one a push
# earlier in the run adds (the main query does not see the rows `added` inserts). As the
# tags view: the tag exists even if its manifest were unknown here. (Each tag looks up its
# manifest by key: LIMIT 1 keeps that an index probe, never a scan of the table to join.)
_CONTENT = f"""
WITH pushed AS (
    SELECT * FROM {_PUSHED.sql}
), added AS (
    INSERT INTO image_manifests (repository, digest, media_type, artifact_type, size)
        SELECT repository, digest, media_type, artifact_type, size FROM pushed
        ON CONFLICT (repository, digest) DO NOTHING
)
INSERT INTO images (repository, tag, digest, media_type, artifact_type, size, updated_at,
    updated_by)
SELECT t.repository, t.tag, t.digest,
    CASE WHEN m.digest IS NULL THEN coalesce(p.media_type, '') ELSE m.media_type END,
    CASE WHEN m.digest IS NULL THEN p.artifact_type ELSE m.artifact_type END,
    CASE WHEN m.digest IS NULL THEN coalesce(p.size, 0) ELSE m.size END,
    t.updated_at, t.updated_by
FROM {_TAGGED.sql}
LEFT JOIN LATERAL (SELECT * FROM image_manifests m WHERE m.repository = t.repository
    AND m.digest = t.digest LIMIT 1) AS m ON true
LEFT JOIN pushed p ON p.repository = t.repository AND p.digest = t.digest
    AND p.position < t.position
ON CONFLICT (repository, tag) DO UPDATE SET digest = EXCLUDED.digest,
    media_type = EXCLUDED.media_type, artifact_type = EXCLUDED.artifact_type,
    size = EXCLUDED.size, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
"""
_UNTAG = f"DELETE FROM images WHERE (repository, tag) IN (SELECT * FROM {_TAGS.sql})"
# a manifest's tags go with it, as in the tags view
_DELETE = [
    f"DELETE FROM {table} WHERE (repository, digest) IN (SELECT * FROM {_KEYS.sql})"
    for table in tables
]
_DROP = [f"DELETE FROM {table} WHERE repository = ANY(%s::text[])" for table in tables]


def _content(cur: Any, run: list[batch.Item]) -> None:
    manifests = [(e, p) for e, p in run if isinstance(e, Manifest.Pushed | Manifest.Repushed)]
    pushed = batch.first_by(manifests, lambda e: (e.repository, e.digest))
    tags = [(e, p) for e, p in run if not isinstance(e, Manifest.Pushed | Manifest.Repushed)]
    tagged = batch.last_by(tags, lambda e: (e.repository, e.tag))  # each overwrites its row
    cur.execute(
        _CONTENT,
        (
            *_PUSHED.params(
                (e.repository, e.digest, e.media_type, e.artifact_type, _total(e), p)
                for e, p in pushed
            ),
            *_TAGGED.params(
                (e.repository, e.tag, e.to_digest, e.timestamp, e.actor, p) for e, p in tagged
            ),
        ),
    )


def apply_batch(cur: Any, items: Sequence[batch.Item]) -> None:
    for kind, run in batch.runs(items, _kind):
        if kind == "content":
            _content(cur, run)
        elif kind == "index":
            for e, _ in run:
                cur.execute(
                    _INDEX,
                    (
                        e.repository,
                        e.digest,
                        e.media_type,
                        e.artifact_type,
                        _total(e),
                        e.repository,
                        [child["digest"] for child in e.manifests],
                    ),
                )
        elif kind == "untag":
            cur.execute(_UNTAG, _TAGS.params((e.repository, e.tag) for e, _ in run))
        elif kind == "delete":
            keys = _KEYS.params((e.repository, e.digest) for e, _ in run)
            for sql in _DELETE:
                cur.execute(sql, keys)
        else:
            names = [e.name for e, _ in run]
            for sql in _DROP:
                cur.execute(sql, (names,))


apply = batch.apply_one(apply_batch)


# -- queries ---------------------------------------------------------------------------------
class ImageRow(NamedTuple):
    repository: str
    namespace: str
    tag: str
    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    updated_at: datetime
    updated_by: str


_COLUMNS = ", ".join(ImageRow._fields)
# sort name -> the columns of its keyset (each index ends with the primary key)
SORTS = {
    "name": ("repository", "tag"),
    "updated": ("updated_at", "repository", "tag"),
    "size": ("size", "repository", "tag"),
}
DEFAULT_ORDER = {"name": "asc", "updated": "desc", "size": "desc"}


class Listing(NamedTuple):
    """What to list: the namespaces the caller may read (None: all), an optional namespace
    and search text, the order, and where the previous page ended."""

    readable: list[str] | None
    namespace: str | None = None
    search: str | None = None
    sort: str = "name"
    order: str = "asc"
    after: tuple[Any, ...] | None = None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _custom_plan(q: Listing) -> bool | None:
    """Never a prepared statement for a search: its plan must see the pattern (a trigram
    index scan suits `org7/`, an ordered scan `e`); a generic plan would pick one for all."""
    return False if q.search is not None else None


def _filters(q: Listing) -> tuple[str, list[Any]]:
    sql, params = " WHERE true", []
    if q.readable is not None:
        sql += " AND namespace = ANY(%s::text[])"
        params.append(q.readable)
    if q.namespace is not None:
        sql += " AND namespace = %s"
        params.append(q.namespace)
    if q.search is not None:
        sql += " AND search LIKE %s"  # the trigram index serves LIKE where pg_trgm exists
        params.append(_like(q.search))
    return sql, params


def _after(q: Listing) -> tuple[str, list[Any], str]:
    """(the condition of the page's start, its parameters, the ORDER BY list)."""
    after, order = keyset.clause(SORTS[q.sort], q.order)
    if q.after is None:
        return "", [], order
    return f" AND {after}", list(q.after), order


async def page(conn: Any, q: Listing, limit: int) -> list[ImageRow]:
    """One page of images in keyset order (fetch limit + 1 to know whether more follow),
    walking the index of the sort order."""
    where, params = _filters(q)
    after, more, order = _after(q)
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM images{where}{after} ORDER BY {order} LIMIT %s",
        [*params, *more, limit],
        prepare=_custom_plan(q),
    )
    return [ImageRow(*row) for row in await cur.fetchall()]


async def few(conn: Any, q: Listing, limit: int) -> tuple[list[ImageRow], int] | None:
    """A page and the total of a search that matches at most SEARCH_COUNT_CAP images, found
    in one pass (the trigram index where there is one, else one scan) and sorted after; None
    when more match — then `page` fills quickly in index order. Walking the index for a rare
    term would pass every row before its matches, which cluster (`org7/` in name order)."""
    where, params = _filters(q)
    after, more, order = _after(q)
    page_order = ", ".join(f"p.{part}" for part in order.split(", "))
    cur = await conn.execute(
        # one row at least (the count), even when no image matches or the page is past the end
        f"WITH matching AS MATERIALIZED (SELECT {_COLUMNS} FROM images{where} LIMIT %s)"
        f" SELECT p.*, c.total FROM (SELECT count(*) AS total FROM matching) AS c"
        f" LEFT JOIN LATERAL (SELECT {_COLUMNS} FROM matching WHERE true{after}"
        f" ORDER BY {order} LIMIT %s) AS p ON true ORDER BY {page_order}",
        [*params, SEARCH_COUNT_CAP + 1, *more, limit],
        prepare=False,
    )
    found = await cur.fetchall()
    total = found[0][-1]
    rows = [ImageRow(*row[:-1]) for row in found if row[0] is not None]
    if total > SEARCH_COUNT_CAP:
        return None
    return rows, total


# Counting stops here: a list's count walks an index (cheap per row), a search's evaluates
# the pattern on every row it passes, so counting a term that matches most of 100,000 tags
# would cost more than the page itself.
LIST_COUNT_CAP = 100_000
SEARCH_COUNT_CAP = 1_000


def count_cap(q: Listing) -> int:
    return SEARCH_COUNT_CAP if q.search is not None else LIST_COUNT_CAP


async def count(conn: Any, q: Listing) -> int:
    """Matching images, counted up to count_cap(q) + 1."""
    where, params = _filters(q)
    cur = await conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM images{where} LIMIT %s) AS matching",
        [*params, count_cap(q) + 1],
        prepare=_custom_plan(q),
    )
    return (await cur.fetchone())[0]


def cursor_of(q: Listing, row: ImageRow) -> str:
    return keyset.encode(q.sort, q.order, [getattr(row, key) for key in SORTS[q.sort]])


def parse_cursor(text: str, sort: str, order: str) -> tuple[Any, ...] | None:
    return keyset.decode(text, sort, order, SORTS[sort])


async def one(conn: Any, repository: str, tag: str) -> ImageRow | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM images WHERE repository = %s AND tag = %s", (repository, tag)
    )
    row = await cur.fetchone()
    return ImageRow(*row) if row else None


async def tags_in(conn: Any, repository: str, tags: list[str]) -> list[ImageRow]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM images WHERE repository = %s AND tag = ANY(%s::text[])"
        " ORDER BY tag",
        (repository, tags),
    )
    return [ImageRow(*row) for row in await cur.fetchall()]


async def sizes(conn: Any, repository: str, digests: list[str]) -> dict[str, int]:
    """Total sizes of manifests of `repository`."""
    cur = await conn.execute(
        "SELECT digest, size FROM image_manifests WHERE repository = %s"
        " AND digest = ANY(%s::text[])",
        (repository, digests),
    )
    return dict(await cur.fetchall())


async def of_repository(
    conn: Any, repository: str, after: str | None, limit: int
) -> list[ImageRow]:
    """A page of one repository's images in tag order, after the tag `after` (the primary
    key's order: as fast at tag 100,000 as at the first)."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM images WHERE repository = %s AND tag > %s ORDER BY tag LIMIT %s",
        (repository, after or "", limit),
    )
    return [ImageRow(*row) for row in await cur.fetchall()]
