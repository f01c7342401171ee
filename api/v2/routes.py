"""The OCI distribution API (/v2). Repository names contain slashes, so one route per method
takes the whole path and the OCI grammar decides what it names (the name is what precedes
the last `/manifests/`, `/blobs/`, `/tags/list` or `/referrers/`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from litestar import Request, Response, Router, delete, get, head, patch, post, put

from api.auth import principals
from api.auth.guards import PULL, authenticate, authorize, current_grant
from api.services import Services
from api.v2 import blobs, manifests
from api.v2.oci import API_VERSION, MAX_PAGE, error_response, oci_response, query_int
from domain.errors import RegistryError
from domain.manifests import OCI_INDEX
from domain.names import check_name, is_valid_name, parse_digest
from projections import referrers, repositories, tags
from storage.errors import TooManyUploads, UploadBusy, UploadUnknown

Handler = Callable[..., Awaitable[Response[Any]]]

# (pattern, {method: handler}); the first pattern that matches the path wins.
_ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = []


def _route(pattern: str, **methods: Handler) -> None:
    _ROUTES.append((re.compile(pattern), methods))


def _next_page(found: list[str], limit: int | None, n: int | None, base: str):
    """Cut a page fetched with one row too many; link the next page if there is one."""
    if limit is None or len(found) <= limit:
        return found, {}
    found = found[:limit]
    return found, {
        "Link": f'<{base}?n={n if n is not None else limit}&last={found[-1]}>; rel="next"'
    }


async def _tags_list(request: Request[Any, Any, Any], services: Services, name: str):
    await authorize(request, name, PULL)
    if not await services.query(repositories.exists, name):
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    n = query_int(request, "n")
    last = _query_text(request, "last")
    if n == 0:  # an empty list and no Link (distribution spec)
        return oci_response(200, {"name": name, "tags": []})
    limit = None if n is None else min(n, MAX_PAGE)
    found = await services.query(tags.page, name, last, None if limit is None else limit + 1)
    found, headers = _next_page(found, limit, n, f"/v2/{name}/tags/list")
    return oci_response(200, {"name": name, "tags": found}, headers=headers)


async def _referrers(request: Request[Any, Any, Any], services: Services, name: str, digest: str):
    await authorize(request, name, PULL)
    parse_digest(digest)
    artifact_type = request.query_params.get("artifactType")
    if artifact_type and "\x00" in artifact_type:
        found = []  # no stored artifactType contains NUL (and Postgres cannot compare one)
    else:
        found = await services.query(referrers.of, name, digest, artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}
    return oci_response(200, body, OCI_INDEX, headers)


_route(r"(?P<name>.+)/tags/list", GET=_tags_list)
_route(
    r"(?P<name>.+)/manifests/(?P<reference>[^/]+)",
    GET=manifests.get,
    HEAD=manifests.head,
    PUT=manifests.put,
    DELETE=manifests.delete,
)
_route(r"(?P<name>.+)/blobs/uploads/?", POST=blobs.start)
_route(
    r"(?P<name>.+)/blobs/uploads/(?P<upload_id>[^/]+)",
    GET=blobs.status,
    PATCH=blobs.patch,
    PUT=blobs.put,
    DELETE=blobs.cancel,
)
_route(r"(?P<name>.+)/blobs/(?P<digest>[^/]+)", GET=blobs.get, HEAD=blobs.head, DELETE=blobs.delete)
_route(r"(?P<name>.+)/referrers/(?P<digest>[^/]+)", GET=_referrers)


def route(path: str) -> tuple[dict[str, Handler], dict[str, str]] | None:
    """The handlers (by method) and parameters of the first route the path after /v2/ takes."""
    for pattern, methods in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None:
            return methods, match.groupdict()
    return None


def _query_text(request: Request[Any, Any, Any], key: str) -> str:
    """A text query parameter as Postgres can compare it: cut at the first NUL, which no
    name or tag contains (and which sorts below every other character, so the order holds)."""
    return (request.query_params.get(key) or "").split("\x00", 1)[0]


def _requested_path(request: Request[Any, Any, Any], rest: str) -> str:
    """The path after /v2/ as the client sent it. Litestar's routing collapses `//` and
    drops a trailing `/`, which would turn the invalid names `a//b` and `a/` into `a/b`, `a`."""
    raw = request.scope.get("raw_path")
    if not raw:
        return rest.lstrip("/")
    path = unquote(raw.decode("latin-1").split("?", 1)[0])
    return path[len("/v2/") :] if path.startswith("/v2/") else rest.lstrip("/")


async def _dispatch(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    services: Services = request.app.state.services
    path = _requested_path(request, rest)
    try:
        found = route(path)
        if found is not None:
            methods, params = found
            handler = methods.get(request.method)
            if handler is None:
                await authenticate(request)
                raise RegistryError("UNSUPPORTED", "method not allowed", status=405)
            if not is_valid_name(params["name"]):
                await authenticate(request)  # nobody unauthenticated learns what is invalid
                check_name(params["name"])
            return await handler(request, services, **params)
        await authenticate(request)
        raise RegistryError("NAME_UNKNOWN", "unknown endpoint", {"path": f"/v2/{path}"})
    except REFUSED as exc:
        return refusal(exc)


# What a /v2 handler answers itself (the rest goes to api.errors, through Litestar).
REFUSED = (RegistryError, UploadUnknown, TooManyUploads, UploadBusy)


def refusal(exc: Exception) -> Response[Any]:
    """The answer to one of the REFUSED errors."""
    if isinstance(exc, RegistryError):
        return error_response(exc)
    if isinstance(exc, UploadUnknown):
        return error_response(RegistryError("BLOB_UPLOAD_UNKNOWN"))
    if isinstance(exc, TooManyUploads):  # sessions free up as uploads finish or are purged
        full = RegistryError("TOOMANYREQUESTS", str(exc), {"per": exc.kind, "limit": exc.limit})
        return error_response(full, {"Retry-After": "10"})
    # UploadBusy: another request (its client maybe dead) still writes the upload
    busy = RegistryError("TOOMANYREQUESTS", "another request is writing this upload")
    return error_response(busy, {"Retry-After": "1"})


async def _refusal(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """The 401 challenge for a ping without a signed-in user's token, else None."""
    try:
        await authenticate(request)
    except RegistryError as exc:
        return error_response(exc)
    return None


@get("/v2")
async def ping(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _refusal(request) or oci_response(200, {})


@head("/v2")
async def ping_head(request: Request[Any, Any, Any]) -> Response[None]:
    ok = Response(None, status_code=200, headers={**API_VERSION, "Content-Length": "2"})
    return await _refusal(request) or ok


@get("/v2/_catalog")
async def catalog(request: Request[Any, Any, Any]) -> Response[Any]:
    """The repositories the caller may pull (the token's `registry:catalog:*` lets them ask;
    the policy decides what they see)."""
    services: Services = request.app.state.services
    try:
        await authorize(request, None, PULL)
        grant = current_grant(request)
        namespaces = await principals.pull_namespaces(services, grant)
        n = query_int(request, "n")
        last = _query_text(request, "last")
        limit = 1000 if n is None else min(n, MAX_PAGE)
        found = (
            await services.query(repositories.catalog, last, limit + 1, namespaces)
            if limit and namespaces != []
            else []
        )
    except RegistryError as exc:
        return error_response(exc)
    found, headers = _next_page(found, limit, n, "/v2/_catalog")
    return oci_response(200, {"repositories": found}, headers=headers)


_UNBOUNDED = {"request_max_body_size": None}


@get("/v2/{rest:path}")
async def v2_get(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    return await _dispatch(request, rest)


@head("/v2/{rest:path}")
async def v2_head(request: Request[Any, Any, Any], rest: str) -> Response[None]:
    return await _dispatch(request, rest)


@put("/v2/{rest:path}", status_code=201, **_UNBOUNDED)
async def v2_put(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    return await _dispatch(request, rest)


@post("/v2/{rest:path}", status_code=202, **_UNBOUNDED)
async def v2_post(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    return await _dispatch(request, rest)


@patch("/v2/{rest:path}", status_code=202, **_UNBOUNDED)
async def v2_patch(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    return await _dispatch(request, rest)


@delete("/v2/{rest:path}", status_code=202)
async def v2_delete(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
    return await _dispatch(request, rest)


router = Router(
    path="/",
    route_handlers=[
        ping,
        ping_head,
        catalog,
        v2_get,
        v2_head,
        v2_put,
        v2_post,
        v2_patch,
        v2_delete,
    ],
)
