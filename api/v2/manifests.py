"""Manifests on /v2: GET, HEAD, PUT and DELETE by tag or digest."""

from __future__ import annotations

import hashlib
from typing import Any

import anyio.to_thread
from litestar import Request, Response

from api.auth.guards import DELETE, PULL, PUSH, authorize
from api.services import Services
from api.v2.oci import oci_response, read_body
from domain.errors import RegistryError
from domain.manifests import MAX_MANIFEST_SIZE, parse_manifest
from domain.names import is_digest, is_valid_tag, parse_digest
from projections import blob_links, manifests, tags

_TOO_LARGE = RegistryError(
    "MANIFEST_INVALID", "manifest exceeds 4 MiB", {"limit": MAX_MANIFEST_SIZE}, status=413
)


def _unknown(reference: str) -> RegistryError:
    return RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})


async def find_manifest(services: Services, name: str, reference: str) -> manifests.Found:
    if is_digest(reference):
        try:
            parse_digest(reference)
        except RegistryError:
            raise _unknown(reference) from None
        found = await services.query(manifests.by_digest, name, reference)
    elif is_valid_tag(reference):
        found = await services.query(manifests.by_tag, name, reference)
    else:
        raise _unknown(reference)
    if found is None:
        raise _unknown(reference)
    return found


async def manifest_bytes(services: Services, digest: str) -> bytes:
    data = services.manifests.get(digest)
    if data is None:
        data = services.store.read_bytes(digest)
        if data is None:
            raise _unknown(digest)
        services.manifests.put(digest, data)
    return data


def _headers(found: manifests.Found) -> dict[str, str]:
    return {"Docker-Content-Digest": found.digest, "ETag": f'"{found.digest}"'}


async def get(request: Request[Any, Any, Any], services: Services, name: str, reference: str):
    await authorize(request, name, PULL)
    found = await find_manifest(services, name, reference)
    data = await manifest_bytes(services, found.digest)
    services.pulls.pulled(name, reference)  # a GET answered: a pull (domain.pulls)
    return oci_response(200, data, found.media_type, _headers(found))


async def head(request: Request[Any, Any, Any], services: Services, name: str, reference: str):
    await authorize(request, name, PULL)
    found = await find_manifest(services, name, reference)
    headers = {**_headers(found), "Content-Length": str(found.size)}
    return Response(
        None,
        status_code=200,
        media_type=found.media_type,
        headers={**headers, "Docker-Distribution-API-Version": "registry/2.0"},
    )


async def _missing(services: Services, name: str, digests: list[str], kind: str) -> list[str]:
    """Referenced digests absent from the views, confirmed against the event store; each
    once (a manifest may list one digest thousands of times: one check, one mention)."""
    digests = list(dict.fromkeys(digests))
    if not digests:
        return []
    module = blob_links if kind == "blob" else manifests
    known = await services.query(module.existing, name, digests)
    check = services.registry.blob_linked if kind == "blob" else services.registry.manifest_exists
    return [
        d for d in digests if d not in known and not await anyio.to_thread.run_sync(check, name, d)
    ]


async def put(request: Request[Any, Any, Any], services: Services, name: str, reference: str):
    caller = await authorize(request, name, PUSH)
    tag = None
    if is_digest(reference):
        algorithm = parse_digest(reference).algorithm
    elif is_valid_tag(reference):
        tag, algorithm = reference, "sha256"
    else:
        raise RegistryError("MANIFEST_INVALID", "invalid tag", {"tag": reference})
    body = await read_body(request, MAX_MANIFEST_SIZE, _TOO_LARGE)
    digest = f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
    if tag is None and digest != reference:
        raise RegistryError("DIGEST_INVALID", detail={"expected": reference, "actual": digest})
    info = parse_manifest(body, request.headers.get("content-type"))
    missing = await _missing(services, name, info.referenced_blobs(), "blob")
    missing += await _missing(services, name, info.referenced_manifests(), "manifest")
    if missing:
        raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digests": missing})

    def store_and_push() -> int | None:  # one hand-off to a thread and back, not two
        services.store.put_bytes(digest, body)
        return services.registry.push_manifest(name, digest, len(body), info, tag, caller)

    await services.settled(await anyio.to_thread.run_sync(store_and_push))
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest}
    if info.subject:
        headers["OCI-Subject"] = info.subject
    return oci_response(201, headers=headers)


async def delete(request: Request[Any, Any, Any], services: Services, name: str, reference: str):
    caller = await authorize(request, name, DELETE)
    if is_digest(reference):
        try:
            parse_digest(reference)
        except RegistryError:
            raise _unknown(reference) from None
        pointing = await services.query(tags.pointing_at, name, reference)
        await services.command(services.registry.delete_manifest, name, reference, pointing, caller)
    elif is_valid_tag(reference):
        await services.command(services.registry.delete_tag, name, reference, caller)
    else:
        raise _unknown(reference)
    return oci_response(202)
