"""The routes under `/images/…` and `/repositories/…`: a name with slashes, then the tag
(images) and an optional `/-/<part>`. Litestar's path parameter works only as the last
segment, so one handler per method takes the rest of the path and dispatches."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from api.web.images import deleting, details, listing, paths
from api.web.images.refusals import not_found
from api.web.session import checked_form, signed_in
from api.web.signing_in import FORM_LIMIT

IMAGE_PARTS = ("layers", "platforms")


@get("/images/{rest:path}", include_in_schema=False)
async def image_pages(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    await signed_in(request)
    target, part = paths.parts(rest)
    name, tag = paths.image_of(request, target)
    if not part:
        return await details.image(request, name, tag)
    if part == "delete":
        return await deleting.confirm_tag(request, name, tag)
    if part in IMAGE_PARTS:
        return await details.part(request, name, tag, part)
    raise not_found(request, name, tag)


@post(
    "/images/{rest:path}",
    status_code=303,
    include_in_schema=False,
    request_max_body_size=FORM_LIMIT,
)
async def image_forms(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    await checked_form(request)
    target, part = paths.parts(rest)
    name, tag = paths.image_of(request, target)
    if part != "delete":
        raise not_found(request, name, tag)
    return await deleting.delete_tag(request, name, tag)


@get("/repositories/{rest:path}", include_in_schema=False)
async def repository_pages(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    await signed_in(request)
    target, part = paths.parts(rest)
    name = paths.repository_of(request, target)
    if not part:
        return await listing.repository(request, name)
    if part == "delete":
        return await deleting.confirm_repository(request, name)
    raise not_found(request, name)


@post(
    "/repositories/{rest:path}",
    status_code=303,
    include_in_schema=False,
    request_max_body_size=FORM_LIMIT,
)
async def repository_forms(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    await checked_form(request)
    target, part = paths.parts(rest)
    name = paths.repository_of(request, target)
    if part != "delete":
        raise not_found(request, name)
    return await deleting.delete_repository(request, name)


route_handlers = [image_pages, image_forms, repository_pages, repository_forms]
