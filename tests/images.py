"""Pushing small images over HTTP, as a registry client does: blob uploads and manifest PUTs.

Every function takes an `httpx.Client` whose `base_url` is the registry's URL and checks the
status of each answer, so a test can call them without repeating the protocol.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise AssertionError(
            f"{response.request.method} {response.request.url} -> {response.status_code}: "
            f"{response.text[:500]}"
        )
    return response


def start_upload(client: httpx.Client, repo: str) -> str:
    """Open an upload session; returns its Location (a path)."""
    r = _expect(client.post(f"/v2/{repo}/blobs/uploads/"), 202)
    return r.headers["location"]


def push_blob(client: httpx.Client, repo: str, data: bytes, chunk_size: int | None = None) -> str:
    """Upload `data` as a blob of `repo` (monolithic, or chunked PATCHes); returns its digest."""
    digest = digest_of(data)
    location = start_upload(client, repo)
    if chunk_size:
        for offset in range(0, len(data), chunk_size):
            piece = data[offset : offset + chunk_size]
            r = _expect(
                client.patch(
                    location,
                    content=piece,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(piece) - 1}",
                    },
                ),
                202,
            )
            location = r.headers["location"]
        body = b""
    else:
        body = data
    _expect(
        client.put(
            location,
            params={"digest": digest},
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        ),
        201,
    )
    return digest


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}


def image_manifest(
    config: bytes, layers: Sequence[bytes], annotations: dict[str, str] | None = None
) -> bytes:
    """The bytes of an OCI image manifest for this config and these layers."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
    }
    if annotations:
        manifest["annotations"] = annotations
    return json.dumps(manifest, sort_keys=True).encode()


def default_config(layers: Iterable[bytes]) -> bytes:
    diff_ids = [digest_of(layer) for layer in layers]
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        sort_keys=True,
    ).encode()


def put_manifest(
    client: httpx.Client,
    repo: str,
    reference: str,
    manifest: bytes,
    media_type: str = OCI_MANIFEST,
    *,
    check: bool = True,
) -> httpx.Response:
    """PUT manifest bytes under a tag or digest; with `check`, insist on 201."""
    r = client.put(
        f"/v2/{repo}/manifests/{reference}", content=manifest, headers={"Content-Type": media_type}
    )
    if check:
        _expect(r, 201)
        assert r.headers["docker-content-digest"] == digest_of(manifest)
    return r


def push_image(
    client: httpx.Client,
    repo: str,
    tag: str | None,
    layers: Sequence[bytes] = (b"layer",),
    config: bytes | None = None,
    annotations: dict[str, str] | None = None,
) -> str:
    """Upload the layers and the config, then PUT the manifest (by tag, or by digest if `tag`
    is None); returns the manifest's digest."""
    config = default_config(layers) if config is None else config
    for blob in (*layers, config):
        if client.head(f"/v2/{repo}/blobs/{digest_of(blob)}").status_code != 200:
            push_blob(client, repo, blob)
    manifest = image_manifest(config, layers, annotations)
    digest = digest_of(manifest)
    put_manifest(client, repo, tag or digest, manifest)
    return digest
