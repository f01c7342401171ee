"""The storage view: what every repository references in the blob store (blobs and
manifests) and counters of distinct blobs and bytes, overall and per namespace, and of the
bytes each repository references — kept as the events arrive by the SQL functions of
migrations 007 and 015, so system info and the dashboard read a few rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from domain.content import BlobLink, Manifest, Repository
from projections import batch

name = "storage"
tables = (
    "storage_refs",
    "storage_blobs",
    "storage_namespace_blobs",
    "storage_namespaces",
    "storage_totals",
    "storage_repositories",
)


_kind = batch.Kinds(
    {
        BlobLink.Linked: "ref",
        BlobLink.Relinked: "ref",
        Manifest.Pushed: "ref",
        Manifest.Repushed: "ref",
        BlobLink.Unlinked: "unref",
        Manifest.Deleted: "unref",
        Repository.Deleted: "drop",
    }
)
_REFS = batch.Rows("repository text, kind text, digest text, size bigint, position bigint")
_UNREFS = batch.Rows("repository text, kind text, digest text, position bigint")
# References added, set-based: what storage_ref (migration 007) does once per reference, for
# a run of them (none twice). Each counter counts the references the run added; a digest is
# new to storage_blobs (or to a namespace) when its count there is the run's own (a row that
# existed had one reference at least), and its size is that of its first reference.
_REF = f"""
WITH input AS (
    SELECT * FROM {_REFS.sql}
), added AS (
    INSERT INTO storage_refs (repository, kind, digest, size)
        SELECT repository, kind, digest, size FROM input ORDER BY position
        ON CONFLICT DO NOTHING RETURNING repository, kind, digest, size
), fresh AS (
    SELECT a.digest, a.size, storage_namespace_of(a.repository) AS namespace, i.position
        FROM added a JOIN input i USING (repository, kind, digest)
), per_blob AS (
    SELECT DISTINCT ON (digest) digest, size, count(*) OVER (PARTITION BY digest) AS n
        FROM fresh ORDER BY digest, position
), blobs AS (
    INSERT INTO storage_blobs AS b (digest, size, refs) SELECT digest, size, n FROM per_blob
        ON CONFLICT (digest) DO UPDATE SET refs = b.refs + EXCLUDED.refs
        RETURNING b.digest, b.size, b.refs
), new_blobs AS (
    SELECT b.digest, b.size FROM blobs b JOIN per_blob p USING (digest) WHERE b.refs = p.n
), totals AS (
    INSERT INTO storage_totals AS t (id, blobs, bytes, referenced)
        SELECT true, (SELECT count(*) FROM new_blobs),
            (SELECT coalesce(sum(size), 0) FROM new_blobs), sum(size)
        FROM fresh HAVING count(*) > 0
        ON CONFLICT (id) DO UPDATE SET blobs = t.blobs + EXCLUDED.blobs,
            bytes = t.bytes + EXCLUDED.bytes, referenced = t.referenced + EXCLUDED.referenced
), repository_bytes AS (
    INSERT INTO storage_repositories AS r (repository, bytes)
        SELECT repository, sum(size) FROM added GROUP BY repository
        ON CONFLICT (repository) DO UPDATE SET bytes = r.bytes + EXCLUDED.bytes
), per_namespace AS (
    SELECT namespace, digest, count(*) AS n FROM fresh GROUP BY namespace, digest
), namespace_blobs AS (
    INSERT INTO storage_namespace_blobs AS b (namespace, digest, refs)
        SELECT namespace, digest, n FROM per_namespace
        ON CONFLICT (namespace, digest) DO UPDATE SET refs = b.refs + EXCLUDED.refs
        RETURNING b.namespace, b.digest, b.refs
)
INSERT INTO storage_namespaces AS s (namespace, blobs, bytes)
    SELECT x.namespace, count(*), sum(b.size) FROM namespace_blobs x
        JOIN per_namespace p USING (namespace, digest) JOIN blobs b USING (digest)
        WHERE x.refs = p.n GROUP BY x.namespace
    ON CONFLICT (namespace) DO UPDATE SET blobs = s.blobs + EXCLUDED.blobs,
        bytes = s.bytes + EXCLUDED.bytes
"""
# References dropped are rare (unlinks, deletions): one call of 007's function per row, in
# log order, in one statement (each call sees what the ones before it did).
_UNREF = f"SELECT storage_unref(repository, kind, digest) FROM {_UNREFS.sql} ORDER BY position"
_DROP = "SELECT storage_drop(r) FROM unnest(%s::text[]) WITH ORDINALITY AS u(r, o) ORDER BY o"


def _ref(event: Any) -> str:
    """What an event adds or removes a reference to: a manifest or a blob."""
    return "manifest" if isinstance(event, Manifest.Event) else "blob"


def apply_batch(cur: Any, items: Sequence[batch.Item]) -> None:
    for kind, run in batch.runs(items, _kind):
        if kind == "ref":
            rows = batch.first_by(run, lambda e: (e.repository, _ref(e), e.digest))
            refs = _REFS.params((e.repository, _ref(e), e.digest, e.size, p) for e, p in rows)
            cur.execute(_REF, refs)
        elif kind == "unref":
            unrefs = _UNREFS.params((e.repository, _ref(e), e.digest, p) for e, p in run)
            cur.execute(_UNREF, unrefs)
        else:
            cur.execute(_DROP, ([e.name for e, _ in run],))


apply = batch.apply_one(apply_batch)


# -- queries ---------------------------------------------------------------------------------
class Totals(NamedTuple):
    blobs: int
    bytes: int
    referenced: int  # bytes of every reference: what the repositories would take unshared


class NamespaceUsage(NamedTuple):
    namespace: str
    blobs: int
    bytes: int


async def totals(conn: Any) -> Totals:
    cur = await conn.execute("SELECT blobs, bytes, referenced FROM storage_totals")
    row = await cur.fetchone()
    return Totals(*row) if row else Totals(0, 0, 0)


async def by_namespace(conn: Any, readable: list[str] | None) -> list[NamespaceUsage]:
    if readable is None:
        cur = await conn.execute(
            "SELECT namespace, blobs, bytes FROM storage_namespaces ORDER BY namespace"
        )
    else:
        cur = await conn.execute(
            "SELECT namespace, blobs, bytes FROM storage_namespaces"
            " WHERE namespace = ANY(%s::text[]) ORDER BY namespace",
            (readable,),
        )
    return [NamespaceUsage(*row) for row in await cur.fetchall()]


async def repository_sizes(conn: Any, repositories: list[str]) -> dict[str, int]:
    """Bytes each repository references (shared layers counted in each)."""
    cur = await conn.execute(
        "SELECT repository, bytes FROM storage_repositories WHERE repository = ANY(%s::text[])",
        (repositories,),
    )
    return dict(await cur.fetchall())


class RepositorySize(NamedTuple):
    repository: str
    bytes: int


async def largest_repositories(
    conn: Any, readable: list[str] | None, limit: int
) -> list[RepositorySize]:
    """The repositories referencing the most bytes (as `repository_sizes` counts them), most
    first; of the namespaces in `readable` (None: all)."""
    where, params = "", []
    if readable is not None:
        where, params = " WHERE namespace = ANY(%s::text[])", [readable]
    cur = await conn.execute(
        f"SELECT repository, bytes FROM storage_repositories{where}"
        " ORDER BY bytes DESC, repository LIMIT %s",
        [*params, limit],
    )
    return [RepositorySize(*row) for row in await cur.fetchall()]
