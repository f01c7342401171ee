"""/api/repositories: the repositories the caller may see, and deleting one.

- `GET /api/repositories?namespace=&sort=name|updated&order=&limit=&cursor=` → a page of
  repositories, each with its tag count, size (bytes of the blobs and manifests it
  references, shared layers counted in each), last push, and pulls (manifest GETs) with the
  last one;
- `DELETE /api/repositories/{name}` → deletes the repository with its tags, manifests and
  blob links (needs the delete permission; 404 for one the caller may not even pull).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get
from litestar.params import Parameter

from api.auth.guards import api_actions, api_caller, readable_namespaces
from api.manage.envelope import Envelope, ok
from api.manage.openapi import errors
from api.manage.params import Cursor, Limit, Namespace, Order
from api.services import Services
from domain.errors import RegistryError
from domain.names import is_valid_name
from projections import keyset, pulls, repositories, storage


class RepositoryItem(msgspec.Struct):
    name: str
    namespace: str
    tag_count: int
    size: int
    created_at: datetime
    created_by: str
    last_push: datetime
    pull_count: int  # manifest GETs, by tag or digest (recorded every CYP_PULL_FLUSH_SECONDS)
    last_pulled_at: datetime | None  # None: never pulled


class RepositoryPage(msgspec.Struct):
    items: list[RepositoryItem]
    next_cursor: str | None


class RepositoryDeleted(msgspec.Struct):
    name: str
    tags: int
    manifests: int
    blobs: int


async def repository_page(
    services: Services,
    readable: list[str] | None,
    namespace: str | None,
    sort: str,
    order: str | None,
    limit: int,
    cursor: str | None,
) -> RepositoryPage:
    """A page of the repositories in `readable` (None: all), for /api and the web UI."""
    order = order or repositories.DEFAULT_ORDER[sort]
    after = None
    if cursor is not None:
        after = keyset.decode(cursor, sort, order, repositories.SORTS[sort])
        if after is None:
            raise RegistryError(
                "INVALID_INPUT",
                "the cursor is not one this listing gave (same sort and order)",
                {"field": "cursor"},
            )
    if readable is not None and namespace is not None and namespace not in readable:
        return RepositoryPage([], None)
    rows = await services.query(
        repositories.listing, readable, namespace, sort, order, after, limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    names = [row.name for row in rows]
    sizes = await services.query(storage.repository_sizes, names)
    counts = await services.query(pulls.of_repositories, names)
    items = [
        RepositoryItem(
            row.name,
            row.namespace,
            row.tag_count,
            sizes.get(row.name, 0),
            row.created_at,
            row.created_by,
            row.updated_at,
            *counts.get(row.name, pulls.NEVER),
        )
        for row in rows
    ]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = keyset.encode(
            sort, order, [getattr(last, key) for key in repositories.SORTS[sort]]
        )
    return RepositoryPage(items, next_cursor)


@get("/api/repositories", tags=["repositories"], responses=errors())
async def list_repositories(
    request: Request[Any, Any, Any],
    namespace: Namespace = None,
    sort: Literal["name", "updated"] = "name",
    order: Order = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response[Envelope[RepositoryPage]]:
    """Repositories the caller may see, a page at a time."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    readable = await readable_namespaces(request, caller)
    return ok(await repository_page(services, readable, namespace, sort, order, limit, cursor))


@delete(
    "/api/repositories/{name:path}",
    status_code=200,
    tags=["repositories"],
    responses=errors(403, 404),
)
async def delete_repository(
    request: Request[Any, Any, Any],
    name: Annotated[str, Parameter(description="the repository's name (may contain /)")],
) -> Response[Envelope[RepositoryDeleted]]:
    """Delete a repository: its tags, manifests and blob links go with it."""
    return ok(await remove_repository(request, name.lstrip("/")))


async def remove_repository(request: Request[Any, Any, Any], name: str) -> RepositoryDeleted:
    """Delete a repository (for /api and the web UI alike): DENIED without the delete
    permission, 404 for one that does not exist or the caller may not even pull."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    unknown = RegistryError("NAME_UNKNOWN", f"repository {name!r} not found", {"name": name})
    if not is_valid_name(name):
        raise unknown
    actions = await api_actions(request, caller, name)
    if "pull" not in actions or not await services.query(repositories.exists, name):
        raise unknown
    if "delete" not in actions:
        raise RegistryError("DENIED", f"you may not delete {name!r}")
    tags, manifests, blobs = await services.query(repositories.contents, name)
    await services.command(
        services.registry.delete_repository, name, tags, manifests, blobs, caller.caller
    )
    return RepositoryDeleted(name, len(tags), len(manifests), len(blobs))


route_handlers = [list_repositories, delete_repository]
