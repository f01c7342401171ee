"""The storage view: what every repository references in the blob store (blobs and
manifests) and counters of distinct blobs and bytes, overall and per namespace — kept as the
events arrive by the SQL functions of migration 007, so system info reads a few rows."""

from __future__ import annotations

from typing import Any, NamedTuple

from domain.content import BlobLink, Manifest, Repository

name = "storage"
tables = (
    "storage_refs",
    "storage_blobs",
    "storage_namespace_blobs",
    "storage_namespaces",
    "storage_totals",
)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, BlobLink.Linked | BlobLink.Relinked):
        cur.execute(
            "SELECT storage_ref(%s, 'blob', %s, %s)", (event.repository, event.digest, event.size)
        )
    elif isinstance(event, BlobLink.Unlinked):
        cur.execute("SELECT storage_unref(%s, 'blob', %s)", (event.repository, event.digest))
    elif isinstance(event, Manifest.Pushed | Manifest.Repushed):
        cur.execute(
            "SELECT storage_ref(%s, 'manifest', %s, %s)",
            (event.repository, event.digest, event.size),
        )
    elif isinstance(event, Manifest.Deleted):
        cur.execute("SELECT storage_unref(%s, 'manifest', %s)", (event.repository, event.digest))
    elif isinstance(event, Repository.Deleted):
        cur.execute("SELECT storage_drop(%s)", (event.name,))


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
        "SELECT repository, sum(size)::bigint FROM storage_refs"
        " WHERE repository = ANY(%s::text[]) GROUP BY repository",
        (repositories,),
    )
    return dict(await cur.fetchall())
