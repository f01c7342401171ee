"""/api/images: the guide's §5.2 image management, answered from the images view.

- `GET /api/images?namespace=&sort=name|updated|size&order=asc|desc&limit=&cursor=` → a page
  of tagged images (repository, tag, digest, size, updated, pulls: the pulls view's, one
  keyed query per page), `total`, and `next_cursor`;
- `GET /api/images/search?q=` → the same, for images whose `repository:tag` contains `q`
  (case-insensitive);
- `GET /api/images/{name}/{tag}` → one image in detail, bounded whatever its manifests list
  (distinct layers and platforms, a few of each, with their counts and cursors to the rest);
- `GET /api/images/{name}/{tag}/-/layers?platform=&limit=&cursor=` → a page of its layers
  (or of one platform's), and `…/-/platforms?limit=&cursor=` → a page of an index's platforms;
- `DELETE /api/images/{name}/{tag}` → deletes the tag, and its manifest when no other tag
  (nor a multi-arch index of the repository) still uses it.

Names contain slashes (`team/web/frontend`): Litestar's path parameter works only as the
last segment, so one route takes the rest of the path and the tag is what follows its last
`/`. Callers see only the namespaces they may read: lists filter in SQL, and a repository
they may not pull answers 404 as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get
from litestar.params import Parameter

from api.auth.guards import api_actions, api_caller, readable_namespaces
from api.manage.envelope import Envelope, ok
from api.manage.image_details import (
    PARTS,
    ImageDetail,
    LayerPage,
    PartLimit,
    Platform_,
    PlatformPage,
    details,
    image_row,
)
from api.manage.openapi import errors
from api.manage.params import TEXT, Cursor, Limit, Namespace, Order
from api.services import Services
from domain.errors import RegistryError
from domain.names import is_valid_name, is_valid_tag
from projections import images, manifests, pulls, tags


# -- answers -------------------------------------------------------------------------------
class Image(msgspec.Struct):
    repository: str
    namespace: str
    tag: str
    digest: str
    media_type: str
    artifact_type: str | None
    size: int  # bytes: manifest, config and layers (an index: with its platforms')
    updated_at: datetime
    updated_by: str
    pull_count: int  # manifest GETs by this tag (recorded every CYP_PULL_FLUSH_SECONDS)
    last_pulled_at: datetime | None  # None: never pulled


class ImagePage(msgspec.Struct):
    items: list[Image]
    total: int  # matching images the caller may see, counted up to 100,000 (search: 1,000)
    total_exact: bool  # False: more than `total` match
    next_cursor: str | None  # None: this is the last page


class ImageDeleted(msgspec.Struct):
    repository: str
    tag: str
    digest: str
    manifest_deleted: bool  # False: another tag or an index still uses the manifest


def _image(row: images.ImageRow, pulled: pulls.PullCount) -> Image:
    return Image(**row._asdict(), **pulled._asdict())


# -- listing and search ----------------------------------------------------------------------
def image_listing(
    readable: list[str] | None,
    namespace: str | None,
    search: str | None,
    sort: str,
    order: str | None,
    cursor: str | None,
) -> images.Listing:
    order = order or images.DEFAULT_ORDER[sort]
    after = None
    if cursor is not None:
        after = images.parse_cursor(cursor, sort, order)
        if after is None:
            raise RegistryError(
                "INVALID_INPUT",
                "the cursor is not one this listing gave (same sort and order)",
                {"field": "cursor"},
            )
    return images.Listing(readable, namespace, search, sort, order, after)


async def image_page(services: Services, q: images.Listing, limit: int) -> ImagePage:
    if q.readable is not None and q.namespace is not None and q.namespace not in q.readable:
        return ImagePage([], 0, True, None)  # a namespace the caller may not read looks empty
    cap = images.count_cap(q)
    found = None
    if q.search is not None:
        found = await services.query(images.few, q, limit + 1)
    if found is not None:
        rows, total = found
    else:  # a list, or a search matching many: more than the cap when a search
        rows = await services.query(images.page, q, limit + 1)
        total = await services.query(images.count, q) if q.search is None else cap + 1
    more = len(rows) > limit
    rows = rows[:limit]
    counts = await services.query(pulls.of_tags, [(row.repository, row.tag) for row in rows])
    return ImagePage(
        [_image(row, counts.get((row.repository, row.tag), pulls.NEVER)) for row in rows],
        min(total, cap),
        total <= cap,
        images.cursor_of(q, rows[-1]) if more else None,
    )


@get("/api/images", tags=["images"], responses=errors())
async def list_images(
    request: Request[Any, Any, Any],
    namespace: Namespace = None,
    sort: Literal["name", "updated", "size"] = "name",
    order: Order = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response[Envelope[ImagePage]]:
    """Tagged images the caller may see, a page at a time."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    readable = await readable_namespaces(request, caller)
    q = image_listing(readable, namespace, None, sort, order, cursor)
    return ok(await image_page(services, q, limit))


@get("/api/images/search", tags=["images"], responses=errors())
async def search_images(
    request: Request[Any, Any, Any],
    q: Annotated[
        str,
        Parameter(
            min_length=1,
            max_length=255,
            pattern=TEXT,
            description="case-insensitive substring of `repository:tag`",
        ),
    ],
    namespace: Namespace = None,
    sort: Literal["name", "updated", "size"] = "name",
    order: Order = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response[Envelope[ImagePage]]:
    """Images whose repository or tag contains `q`, ignoring case."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    readable = await readable_namespaces(request, caller)
    query = image_listing(readable, namespace, q, sort, order, cursor)
    return ok(await image_page(services, query, limit))


# -- one image -------------------------------------------------------------------------------
def split_image(rest: str) -> tuple[str, str]:
    """`/team/web/frontend/1.0` → ("team/web/frontend", "1.0"); 404 if it names no image."""
    name, _, tag = rest.lstrip("/").rpartition("/")
    if not is_valid_name(name) or not is_valid_tag(tag):
        raise RegistryError("NOT_FOUND", f"no image {rest.lstrip('/')!r}")
    return name, tag


async def visible_repository(
    request: Request[Any, Any, Any], name: str
) -> tuple[Any, tuple[str, ...]]:
    """(caller, their actions on `name`); 404 for a repository they may not even pull."""
    caller = await api_caller(request)
    actions = await api_actions(request, caller, name)
    if "pull" not in actions:
        raise RegistryError("NAME_UNKNOWN", f"repository {name!r} not found", {"name": name})
    return caller, actions


@get("/api/images/{rest:path}", tags=["images"], responses=errors(404))
async def show_image(
    request: Request[Any, Any, Any],
    rest: str,
    limit: PartLimit = None,
    cursor: Cursor = None,
    platform: Platform_ = None,
) -> Response[Envelope[ImageDetail | LayerPage | PlatformPage]]:
    """One image: `/api/images/{name}/{tag}` (the name may contain slashes), with at most 100
    distinct layers, 20 distinct platforms (each with at most 50 layers) and 50 referrers,
    their counts, and cursors to the rest: `…/{tag}/-/layers?cursor=` (a page of layers:
    the image's, or with `platform=<digest>` a platform's) and `…/{tag}/-/platforms?cursor=`
    (a page of platforms). `limit`, `cursor` and `platform` apply to those pages only."""
    services: Services = request.app.state.services
    image, part_of, part = rest.partition("/-/")
    name, tag = split_image(image)
    if part_of and part not in PARTS:
        raise RegistryError("NOT_FOUND", f"no {part!r} of an image")
    await visible_repository(request, name)
    if part_of:
        return ok(await PARTS[part](services, name, tag, limit, cursor, platform))
    return ok(await details(request, services, name, tag))


@delete("/api/images/{rest:path}", status_code=200, tags=["images"], responses=errors(403, 404))
async def delete_image(
    request: Request[Any, Any, Any], rest: str
) -> Response[Envelope[ImageDeleted]]:
    """Delete a tag, and its manifest too when nothing else uses it."""
    name, tag = split_image(rest)
    return ok(await remove_tag(request, name, tag))


async def tag_users(services: Services, name: str, tag: str, digest: str) -> list[str]:
    """What else keeps the manifest of `name:tag`: its other tags, and indexes listing it."""
    others = [t for t in await services.query(tags.pointing_at, name, digest) if t != tag]
    return others + await services.query(manifests.parents, name, digest)


async def remove_tag(request: Request[Any, Any, Any], name: str, tag: str) -> ImageDeleted:
    """Delete a tag (for /api and the web UI alike), and its manifest when nothing else uses
    it; DENIED without the delete permission, 404 where the caller may not even pull."""
    services: Services = request.app.state.services
    caller, actions = await visible_repository(request, name)
    if "delete" not in actions:
        raise RegistryError("DENIED", f"you may not delete from {name!r}")
    row = await image_row(services, name, tag)
    kept = await tag_users(services, name, tag, row.digest)
    registry = services.registry
    if kept:
        await services.command(registry.delete_tag, name, tag, caller.caller)
    else:
        await services.command(registry.delete_manifest, name, row.digest, [tag], caller.caller)
    return ImageDeleted(name, tag, row.digest, not kept)


route_handlers = [list_images, search_images, show_image, delete_image]
