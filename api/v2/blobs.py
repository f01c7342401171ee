"""Blobs and blob uploads on /v2: HEAD/GET (with Range), DELETE, POST/PATCH/PUT/GET/DELETE
of upload sessions, single-POST and monolithic uploads, and cross-repository mounts."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any, NamedTuple

from litestar import Request, Response
from litestar.response import Stream

from api.auth.guards import DELETE, PULL, PUSH, authorize, current_grant, permitted, scope_of
from api.auth.principals import pull_namespaces
from api.services import Services
from api.v2.oci import (
    API_VERSION,
    declared_length,
    error_response,
    oci_response,
    parse_content_range,
    parse_range,
)
from domain.caller import Caller
from domain.errors import RegistryError
from domain.names import is_valid_name, parse_digest
from projections import blob_links
from storage.errors import DigestMismatch, UploadOffsetMismatch, UploadUnknown


def _unknown(digest: str) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", detail={"digest": digest})


async def _locate(services: Services, name: str, digest: str) -> int:
    """Size of a blob this repository may serve."""
    parse_digest(digest)
    if not await services.query(blob_links.is_linked, name, digest):
        raise _unknown(digest)
    size = services.store.size(digest)
    if size is None:
        raise _unknown(digest)
    return size


def _blob_headers(digest: str, size: int) -> dict[str, str]:
    return {
        **API_VERSION,
        "Docker-Content-Digest": digest,
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Content-Length": str(size),
    }


async def head(request: Request[Any, Any, Any], services: Services, name: str, digest: str):
    await authorize(request, name, PULL)
    return await head_blob(services, name, digest)


async def head_blob(services: Services, name: str, digest: str) -> Response[Any]:
    """HEAD of a blob by a caller who may pull it (also api.v2.blob_fastpath's)."""
    size = await _locate(services, name, digest)
    # b"", not None: Litestar cannot render None as application/octet-stream (a 500).
    return Response(
        b"",
        status_code=200,
        media_type="application/octet-stream",
        headers=_blob_headers(digest, size),
    )


async def get(request: Request[Any, Any, Any], services: Services, name: str, digest: str):
    await authorize(request, name, PULL)
    size = await _locate(services, name, digest)
    headers = _blob_headers(digest, size)
    wanted = request.headers.get("range")
    if wanted is None:
        start, end, status = 0, size - 1, 200
    else:
        try:
            start, end = parse_range(wanted, size)
        except RegistryError as exc:
            return error_response(exc, headers={"Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
    return Stream(
        services.store.read(digest, start, end) if size else _empty(),
        status_code=status,
        media_type="application/octet-stream",
        headers=headers,
    )


async def _empty():
    if False:  # pragma: no cover - an async generator that yields nothing
        yield b""


async def delete(request: Request[Any, Any, Any], services: Services, name: str, digest: str):
    caller = await authorize(request, name, DELETE)
    parse_digest(digest)
    await services.command(services.registry.unlink_blob, name, digest, caller)
    return oci_response(202)


# -- uploads ------------------------------------------------------------------------------------
def _upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }


def _created(name: str, digest: str) -> Response[Any]:
    return oci_response(
        201, headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}
    )


async def _link(services: Services, name: str, digest: str, size: int, caller: Caller) -> None:
    await services.command(services.registry.link_blob, name, digest, size, caller)


async def _mount(
    request: Request[Any, Any, Any],
    services: Services,
    name: str,
    digest: str,
    source: str | None,
    caller: Caller,
) -> bool:
    """Link a blob from another repository (or, without `from`, any) into this one."""
    try:
        parse_digest(digest)
    except RegistryError:
        return False
    if source:
        if not is_valid_name(source):
            return False
        if not await permitted(request, source, PULL):
            return False  # not readable by the caller: an ordinary upload instead
        found = await services.query(blob_links.is_linked, source, digest)
    else:  # any repository the caller may pull from (content addressing is no permission)
        readable = await pull_namespaces(services, current_grant(request))
        found = readable != [] and await services.query(
            blob_links.linked_anywhere, digest, readable
        )
    size = services.store.size(digest) if found else None
    if size is None:
        return False
    await _link(services, name, digest, size, caller)
    return True


async def _finish(
    services: Services, name: str, upload_id: str, digest: str, caller: Caller
) -> Response[Any]:
    parse_digest(digest)

    def link(size: int) -> int | None:  # in the thread that moved the blob into place
        return services.registry.link_blob(name, digest, size, caller)

    try:
        _, position = await services.store.finish_then(upload_id, name, digest, link)
    except DigestMismatch:
        raise RegistryError("DIGEST_INVALID", detail={"digest": digest}) from None
    await services.settled(position)
    return _created(name, digest)


def _mount_challenge(name: str, mount: str | None, source: str | None) -> tuple[str, ...]:
    """What a mount's 401 names, as Distribution does: the target's pull and push beside
    the source's pull, so a client asking for exactly these gets a token that mounts (the
    required push alone would get one that falls back to an upload)."""
    if not mount or not source or source == name or not is_valid_name(source):
        return ()
    return scope_of(name, PULL, PUSH), scope_of(source, PULL)


class Body(NamedTuple):
    """A request body to append to an upload, with what its headers say about it."""

    chunks: AsyncIterable[bytes]
    content_range: str | None = None
    content_length: str | None = None


async def start(request: Request[Any, Any, Any], services: Services, name: str):
    params = request.query_params
    mount, source = params.get("mount"), params.get("from")
    challenged = _mount_challenge(name, mount, source)
    caller = await authorize(request, name, PUSH, challenged=challenged)
    if mount and await _mount(request, services, name, mount, source, caller):
        return _created(name, mount)
    return await open_upload(services, name, caller, params.get("digest"), Body(request.stream()))


async def open_upload(
    services: Services, name: str, caller: Caller, digest: str | None, body: Body
) -> Response[Any]:
    """A new upload (POST, no mount) by a caller who may push; with `digest`, the body is
    the whole blob (also api.v2.blob_fastpath's)."""
    if digest:
        parse_digest(digest)
    upload_id = services.store.start_upload(name, caller.actor)  # capped: api.v2.routes
    if digest:  # single POST: the body is the whole blob
        try:
            await services.store.append(upload_id, name, body.chunks)
            return await _finish(services, name, upload_id, digest, caller)
        finally:
            _discard(services, upload_id, name)
    return oci_response(202, headers=_upload_headers(name, upload_id, 0))


def _discard(services: Services, upload_id: str, name: str) -> None:
    try:
        services.store.cancel(upload_id, name)
    except UploadUnknown:
        pass


async def _append(services: Services, name: str, upload_id: str, body: Body) -> int:
    chunk = parse_content_range(body.content_range)
    length = declared_length(body.content_length)
    if chunk and length is not None and length != chunk[1] - chunk[0] + 1:
        # A chunk whose body is not the range it claims would shift every later offset.
        raise RegistryError(
            "RANGE_INVALID",
            "Content-Range does not match Content-Length",
            {"Content-Range": body.content_range, "Content-Length": length},
        )
    try:
        return await services.store.append(
            upload_id, name, body.chunks, chunk[0] if chunk else None
        )
    except UploadOffsetMismatch as exc:
        raise RegistryError(
            "RANGE_INVALID", "chunk out of order", {"expected_offset": exc.size}
        ) from None


def _body(request: Request[Any, Any, Any]) -> Body:
    headers = request.headers
    return Body(request.stream(), headers.get("content-range"), headers.get("content-length"))


async def patch(request: Request[Any, Any, Any], services: Services, name: str, upload_id: str):
    await authorize(request, name, PUSH)
    return await append_chunk(services, name, upload_id, _body(request))


async def append_chunk(services: Services, name: str, upload_id: str, body: Body) -> Response[Any]:
    """PATCH of an upload by a caller who may push (also api.v2.blob_fastpath's)."""
    size = await _append(services, name, upload_id, body)
    return oci_response(202, headers=_upload_headers(name, upload_id, size))


async def put(request: Request[Any, Any, Any], services: Services, name: str, upload_id: str):
    caller = await authorize(request, name, PUSH)
    digest = request.query_params.get("digest")
    return await close_upload(services, name, upload_id, digest, _body(request), caller)


async def close_upload(
    services: Services, name: str, upload_id: str, digest: str | None, body: Body, caller: Caller
) -> Response[Any]:
    """PUT of an upload (its last bytes, if any, and its digest) by a caller who may push
    (also api.v2.blob_fastpath's)."""
    if not digest:
        raise RegistryError("DIGEST_INVALID", "digest query parameter missing")
    parse_digest(digest)
    await _append(services, name, upload_id, body)
    return await _finish(services, name, upload_id, digest, caller)


async def status(request: Request[Any, Any, Any], services: Services, name: str, upload_id: str):
    await authorize(request, name, PUSH)
    size = services.store.upload_size(upload_id, name)
    return oci_response(204, headers=_upload_headers(name, upload_id, size))


async def cancel(request: Request[Any, Any, Any], services: Services, name: str, upload_id: str):
    await authorize(request, name, PUSH)
    services.store.cancel(upload_id, name)
    return oci_response(204)
