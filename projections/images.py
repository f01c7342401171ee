"""The images view: every tag with what the management API lists, sorts and searches by
(digest, media type, total size, last update), and each manifest's total size.

The total size of an image manifest is its own size plus each distinct blob it references
(config and layers, a repeated one once); of an index, its own size plus each distinct
platform's total (they are pushed before the index, so their rows are here; a layer shared
by two platforms counts in each, as each platform is pulled on its own). The view keeps its
own manifest sizes rather than reading the manifests view, so it can be replayed on its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from domain.content import Manifest, Repository, Tag
from domain.manifests import image_size
from projections import keyset

name = "images"
tables = ("images", "image_manifests")


def _total(event: Any) -> int:
    return image_size(event.size, event.config, event.layers)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, Manifest.Pushed | Manifest.Repushed):
        children = [child["digest"] for child in event.manifests]
        cur.execute(
            "INSERT INTO image_manifests (repository, digest, media_type, artifact_type, size)"
            " VALUES (%s, %s, %s, %s, %s + (SELECT coalesce(sum(size), 0) FROM image_manifests"
            " WHERE repository = %s AND digest = ANY(%s::text[])))"
            " ON CONFLICT (repository, digest) DO NOTHING",
            (
                event.repository,
                event.digest,
                event.media_type,
                event.artifact_type,
                _total(event),
                event.repository,
                children,
            ),
        )
    elif isinstance(event, Tag.Created | Tag.Moved):
        # As the tags view: the tag exists even if its manifest were unknown here.
        cur.execute(
            "INSERT INTO images (repository, tag, digest, media_type, artifact_type, size,"
            " updated_at, updated_by)"
            " SELECT %s, %s, %s, coalesce(m.media_type, ''), m.artifact_type,"
            " coalesce(m.size, 0), %s, %s FROM (SELECT 1) AS one LEFT JOIN image_manifests m"
            " ON m.repository = %s AND m.digest = %s"
            " ON CONFLICT (repository, tag) DO UPDATE SET digest = EXCLUDED.digest,"
            " media_type = EXCLUDED.media_type, artifact_type = EXCLUDED.artifact_type,"
            " size = EXCLUDED.size, updated_at = EXCLUDED.updated_at,"
            " updated_by = EXCLUDED.updated_by",
            (
                event.repository,
                event.tag,
                event.to_digest,
                event.timestamp,
                event.actor,
                event.repository,
                event.to_digest,
            ),
        )
    elif isinstance(event, Tag.Deleted):
        cur.execute(
            "DELETE FROM images WHERE repository = %s AND tag = %s", (event.repository, event.tag)
        )
    elif isinstance(event, Manifest.Deleted):
        for table in tables:  # its tags go with it, as in the tags view
            cur.execute(
                f"DELETE FROM {table} WHERE repository = %s AND digest = %s",
                (event.repository, event.digest),
            )
    elif isinstance(event, Repository.Deleted):
        for table in tables:
            cur.execute(f"DELETE FROM {table} WHERE repository = %s", (event.name,))


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
