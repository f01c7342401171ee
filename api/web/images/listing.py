"""`/images` (every image the user may read, searched, sorted, filtered, a page at a time),
`/repositories` and `/repositories/{name}` (one repository's tags, a keyed page at a time)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from api.auth.guards import readable_namespaces
from api.manage.images import image_listing, image_page, visible_repository
from api.manage.repositories import repository_page
from api.web.images import inputs
from api.web.images.common import namespace_choices, page, push_target
from api.web.images.refusals import bad_cursor, not_found, shown
from api.web.session import signed_in
from domain.names import is_valid_name, is_valid_tag
from projections import images, keyset, pulls, repositories, storage

IMAGE_SORTS = tuple(images.SORTS)
REPOSITORY_SORTS = tuple(repositories.SORTS)
PAGE = 50  # rows a page unless `limit` says otherwise
TAGS_PAGE = 100


def _deleted(request: Request[Any, Any, Any]) -> str | None:
    """The notice after a delete: `?deleted=name:tag` or `name`, shown only if it is one."""
    value = request.query_params.get("deleted") or ""
    name, _, tag = value.partition(":")
    return value if is_valid_name(name) and (not tag or is_valid_tag(tag)) else None


@get("/images", include_in_schema=False)
async def image_list(request: Request[Any, Any, Any]) -> Response[Any]:
    caller = await signed_in(request)
    services = request.app.state.services
    q = inputs.text(request, "q")
    namespace = inputs.text(request, "namespace")
    sort = inputs.choice(request, "sort", IMAGE_SORTS, "name") or "name"
    order = inputs.choice(request, "order", inputs.ORDERS, images.DEFAULT_ORDER[sort])
    limit = inputs.limit(request, PAGE)
    cursor = inputs.cursor(request)
    readable = await readable_namespaces(request, caller)
    with shown(request):
        listing = image_listing(readable, namespace, q, sort, order, cursor)
    found = await image_page(services, listing, limit)
    nothing_at_all = not found.items and not (q or namespace or cursor)
    return page(
        request,
        "list.html",
        found=found,
        q=q or "",
        namespace=namespace or "",
        sort=sort,
        order=order,
        limit=limit if limit != PAGE else None,
        cursor=cursor,
        namespaces=await namespace_choices(request, caller, readable),
        push_to=await push_target(request, caller) if nothing_at_all else None,
        nothing_at_all=nothing_at_all,
        deleted=_deleted(request),
    )


@get("/repositories", include_in_schema=False)
async def repository_list(request: Request[Any, Any, Any]) -> Response[Any]:
    caller = await signed_in(request)
    services = request.app.state.services
    namespace = inputs.text(request, "namespace")
    sort = inputs.choice(request, "sort", REPOSITORY_SORTS, "name") or "name"
    order = inputs.choice(request, "order", inputs.ORDERS, repositories.DEFAULT_ORDER[sort])
    limit = inputs.limit(request, PAGE)
    cursor = inputs.cursor(request)
    readable = await readable_namespaces(request, caller)
    with shown(request):
        found = await repository_page(services, readable, namespace, sort, order, limit, cursor)
    return page(
        request,
        "repositories.html",
        found=found,
        namespace=namespace or "",
        sort=sort,
        order=order,
        limit=limit if limit != PAGE else None,
        cursor=cursor,
        namespaces=await namespace_choices(request, caller, readable),
        deleted=_deleted(request),
    )


async def repository(request: Request[Any, Any, Any], name: str) -> Response[Any]:
    """One repository: its facts and its tags in name order, TAGS_PAGE at a time."""
    await signed_in(request)
    services = request.app.state.services
    limit = inputs.limit(request, TAGS_PAGE)
    cursor = inputs.cursor(request)
    after = None
    if cursor is not None:
        key = keyset.decode(cursor, "tag", "asc", ("tag",))
        if key is None:
            raise bad_cursor(request)
        after = key[0]
    with shown(request, name):
        _caller, actions = await visible_repository(request, name)
    row = await services.query(repositories.get, name)
    if row is None:
        raise not_found(request, name)
    rows = await services.query(images.of_repository, name, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    size = (await services.query(storage.repository_sizes, [name])).get(name, 0)
    pulled = (await services.query(pulls.of_repositories, [name])).get(name, pulls.NEVER)
    tag_pulls = await services.query(pulls.of_tags, [(name, r.tag) for r in rows])
    return page(
        request,
        "repository.html",
        repository=row,
        size=size,
        pulled=pulled,
        tags=[(r, tag_pulls.get((name, r.tag), pulls.NEVER)) for r in rows],
        next_cursor=keyset.encode("tag", "asc", [rows[-1].tag]) if more else None,
        cursor=cursor,
        limit=limit if limit != TAGS_PAGE else None,
        may_delete="delete" in actions,
    )


route_handlers = [image_list, repository_list]
