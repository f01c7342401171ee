"""Our own conformance suite for the OCI Distribution Spec v1.1, one test per requirement.

Every test talks HTTP to a real `cyp-registry serve` process (the `module_registry` fixture)
and uses its own repository names, so tests are independent of each other and of order.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SBOM_TYPE = "application/vnd.example.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.example.signature.v1+json"
MIB = 1024 * 1024


# -- helpers -------------------------------------------------------------------------------------
def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def repo(label: str) -> str:
    """A repository name no other test uses."""
    return f"conf/{label}-{uuid.uuid4().hex[:12]}"


def with_query(location: str, **params: str) -> str:
    """Add query parameters to an upload Location (which may already carry some)."""
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def assert_oci_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The status, and (except for HEAD) an OCI error body naming `code`."""
    assert response.status_code == status, (response.status_code, response.text)
    if response.request.method == "HEAD":
        assert response.content == b""
        return {}
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and list(body) == ["errors"], body
    assert isinstance(body["errors"], list) and body["errors"], body
    for error in body["errors"]:
        assert {"code", "message", "detail"} <= set(error), error
        assert isinstance(error["message"], str)
        assert re.fullmatch("[A-Z_]+", error["code"]), error
    codes = [error["code"] for error in body["errors"]]
    assert code in codes, body
    return body


def start_upload(client: httpx.Client, name: str) -> str:
    r = client.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    return r.headers["location"]


def upload_blob(client: httpx.Client, name: str, data: bytes, algorithm: str = "sha256") -> str:
    """POST + monolithic PUT; returns the digest."""
    digest = digest_of(data, algorithm)
    location = start_upload(client, name)
    r = client.put(
        with_query(location, digest=digest),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    return digest


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def encode(document: dict[str, Any]) -> bytes:
    # Indented, so the registry has to keep the exact bytes (not re-serialize).
    return json.dumps(document, indent=3).encode()


def image_manifest(
    client: httpx.Client,
    name: str,
    media_type: str = OCI_MANIFEST,
    seed: str = "",
    **extra: Any,
) -> bytes:
    """Upload a config and a layer to `name`; return the bytes of a manifest naming them."""
    docker = media_type == DOCKER_MANIFEST
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed or name}).encode()
    layer = f"layer of {name} {seed} {uuid.uuid4()}".encode()
    upload_blob(client, name, config)
    upload_blob(client, name, layer)
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer)],
        **extra,
    }
    return encode(document)


def put_manifest(
    client: httpx.Client, name: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
) -> httpx.Response:
    return client.put(
        f"/v2/{name}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
    )


def push_manifest(
    client: httpx.Client, name: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
) -> str:
    r = put_manifest(client, name, reference, body, media_type)
    assert r.status_code == 201, r.text
    return r.headers["docker-content-digest"]


def push_image(client: httpx.Client, name: str, tag: str, media_type: str = OCI_MANIFEST) -> str:
    body = image_manifest(client, name, media_type, seed=tag)
    return push_manifest(client, name, tag, body, media_type)


def push_artifact(
    client: httpx.Client,
    name: str,
    subject: str,
    artifact_type: str | None,
    annotations: dict[str, str] | None = None,
    config_type: str = OCI_EMPTY,
) -> tuple[str, bytes]:
    """Push an artifact manifest referring to `subject`; returns its digest and bytes."""
    subject_bytes = client.get(
        f"/v2/{name}/manifests/{subject}", headers={"Accept": OCI_MANIFEST}
    ).content
    config = b"{}"
    payload = f"payload {uuid.uuid4()}".encode()
    upload_blob(client, name, config)
    upload_blob(client, name, payload)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_type, config),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(subject_bytes)},
    }
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    if annotations:
        document["annotations"] = annotations
    body = encode(document)
    return push_manifest(client, name, digest_of(body), body), body


@pytest.fixture(scope="module")
def client(module_registry) -> httpx.Client:
    with module_registry.client() as c:
        yield c


# == /v2/ ======================================================================================
def test_ping_returns_200_with_distribution_api_version(client):
    r = client.get("/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_ping_answers_head_too(client):
    r = client.head("/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


# == blob uploads ==============================================================================
def test_post_upload_returns_202_with_location_and_upload_uuid(client):
    name = repo("post")
    r = client.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202
    assert r.headers["location"]
    assert r.headers["docker-upload-uuid"]
    assert r.headers["docker-upload-uuid"] in r.headers["location"]
    assert r.headers["range"] == "0-0"


def test_monolithic_upload_post_then_put_creates_blob(client):
    name = repo("mono")
    data = b"monolithic blob content"
    digest = digest_of(data)
    location = start_upload(client, name)
    r = client.put(
        with_query(location, digest=digest),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["location"] == f"/v2/{name}/blobs/{digest}"
    fetched = client.get(r.headers["location"])
    assert fetched.status_code == 200
    assert fetched.content == data


def test_single_post_with_digest_creates_blob(client):
    name = repo("single")
    data = b"single POST blob"
    digest = digest_of(data)
    r = client.post(
        f"/v2/{name}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["location"] == f"/v2/{name}/blobs/{digest}"
    assert client.get(f"/v2/{name}/blobs/{digest}").content == data


def test_single_post_with_wrong_digest_is_digest_invalid(client):
    name = repo("single-bad")
    wrong = digest_of(b"something else")
    r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": wrong}, content=b"actual bytes")
    assert_oci_error(r, 400, "DIGEST_INVALID")
    assert_oci_error(client.head(f"/v2/{name}/blobs/{wrong}"), 404, "BLOB_UNKNOWN")


def test_chunked_upload_patch_with_content_range_then_put(client):
    name = repo("chunked")
    chunks = [b"first-chunk;", b"second-chunk;", b"third"]
    data = b"".join(chunks)
    location = start_upload(client, name)
    offset = 0
    for chunk in chunks:
        r = client.patch(
            location,
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                "Content-Length": str(len(chunk)),
            },
        )
        assert r.status_code == 202, r.text
        offset += len(chunk)
        assert r.headers["range"] == f"0-{offset - 1}"
        assert r.headers["docker-upload-uuid"]
        location = r.headers["location"]
    r = client.put(with_query(location, digest=digest_of(data)))
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest_of(data)
    assert client.get(f"/v2/{name}/blobs/{digest_of(data)}").content == data


def test_chunked_upload_final_chunk_in_put(client):
    name = repo("chunk-put")
    location = start_upload(client, name)
    r = client.patch(location, content=b"0123456789", headers={"Content-Range": "0-9"})
    assert r.status_code == 202
    data = b"0123456789abcdef"
    r = client.put(
        with_query(r.headers["location"], digest=digest_of(data)),
        content=b"abcdef",
        headers={"Content-Range": "10-15", "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{name}/blobs/{digest_of(data)}").content == data


def test_streamed_patch_without_content_range_appends(client):
    name = repo("stream")
    location = start_upload(client, name)

    def body():
        yield b"streamed "
        yield b"in pieces"

    r = client.patch(location, content=body())
    assert r.status_code == 202
    assert r.headers["range"] == "0-17"
    data = b"streamed in pieces"
    r = client.put(with_query(r.headers["location"], digest=digest_of(data)))
    assert r.status_code == 201
    assert client.get(f"/v2/{name}/blobs/{digest_of(data)}").content == data


def test_patch_out_of_order_is_416_range_invalid(client):
    name = repo("ooo")
    location = start_upload(client, name)
    r = client.patch(location, content=b"12345", headers={"Content-Range": "0-4"})
    assert r.status_code == 202
    location = r.headers["location"]
    r = client.patch(location, content=b"67890", headers={"Content-Range": "10-14"})
    assert_oci_error(r, 416, "RANGE_INVALID")
    r = client.patch(location, content=b"12345", headers={"Content-Range": "0-4"})
    assert_oci_error(r, 416, "RANGE_INVALID")
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-4"


def test_patch_content_range_not_matching_body_is_416(client):
    name = repo("cr-len")
    location = start_upload(client, name)
    r = client.patch(location, content=b"abc", headers={"Content-Range": "0-9"})
    assert_oci_error(r, 416, "RANGE_INVALID")
    assert client.get(location).headers["range"] == "0-0"


def test_upload_status_returns_204_range_location_and_uuid(client):
    name = repo("status")
    location = start_upload(client, name)
    client.patch(location, content=b"x" * 100, headers={"Content-Range": "0-99"})
    r = client.get(location)
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["range"] == "0-99"
    assert r.headers["location"]
    upload_id = r.headers["docker-upload-uuid"]
    assert upload_id and upload_id in r.headers["location"]
    # The Location answered is usable to continue.
    r = client.patch(r.headers["location"], content=b"y", headers={"Content-Range": "100-100"})
    assert r.status_code == 202
    assert r.headers["range"] == "0-100"


def test_cancelled_upload_is_blob_upload_unknown(client):
    name = repo("cancel")
    location = start_upload(client, name)
    client.patch(location, content=b"abc", headers={"Content-Range": "0-2"})
    r = client.delete(location)
    assert r.status_code == 204
    assert_oci_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_oci_error(client.patch(location, content=b"d"), 404, "BLOB_UPLOAD_UNKNOWN")
    r = client.put(with_query(location, digest=digest_of(b"abc")))
    assert_oci_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_oci_error(client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_finished_upload_is_blob_upload_unknown(client):
    name = repo("finished")
    location = start_upload(client, name)
    assert client.put(with_query(location, digest=digest_of(b"")), content=b"").status_code == 201
    assert_oci_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("upload_id", [str(uuid.uuid4()), "not-a-uuid", "...", "_uploads"])
def test_unknown_upload_id_is_blob_upload_unknown(client, method, upload_id):
    name = repo("noupload")
    params = {"digest": digest_of(b"")} if method == "PUT" else {}
    r = client.request(method, f"/v2/{name}/blobs/uploads/{upload_id}", params=params, content=b"")
    assert_oci_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_of_another_repository_is_blob_upload_unknown(client):
    location = start_upload(client, repo("owner"))
    upload_id = location.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    r = client.get(f"/v2/{repo('other')}/blobs/uploads/{upload_id}")
    assert_oci_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


def test_put_with_wrong_digest_is_digest_invalid(client):
    name = repo("wrong")
    location = start_upload(client, name)
    wrong = digest_of(b"not these bytes")
    r = client.put(with_query(location, digest=wrong), content=b"these bytes")
    assert_oci_error(r, 400, "DIGEST_INVALID")
    assert_oci_error(client.head(f"/v2/{name}/blobs/{wrong}"), 404, "BLOB_UNKNOWN")
    assert_oci_error(
        client.head(f"/v2/{name}/blobs/{digest_of(b'these bytes')}"), 404, "BLOB_UNKNOWN"
    )


def test_put_without_digest_is_digest_invalid(client):
    name = repo("nodigest")
    location = start_upload(client, name)
    r = client.put(location, content=b"bytes without a digest")
    assert_oci_error(r, 400, "DIGEST_INVALID")


MALFORMED_DIGESTS = {
    "bad-hex": "sha256:" + "g" * 64,
    "uppercase-hex": "sha256:" + "A" * 64,
    "too-short": "sha256:" + "a" * 63,
    "too-long": "sha256:" + "a" * 65,
    "sha512-wrong-length": "sha512:" + "a" * 64,
    "unknown-algorithm": "md5:" + "a" * 32,
    "no-algorithm": "a" * 64,
    "empty-encoding": "sha256:",
}


@pytest.mark.parametrize("digest", MALFORMED_DIGESTS.values(), ids=MALFORMED_DIGESTS.keys())
def test_put_upload_with_malformed_digest_is_digest_invalid(client, digest):
    name = repo("malformed")
    location = start_upload(client, name)
    r = client.put(with_query(location, digest=digest), content=b"data")
    assert_oci_error(r, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", MALFORMED_DIGESTS.values(), ids=MALFORMED_DIGESTS.keys())
def test_single_post_with_malformed_digest_is_digest_invalid(client, digest):
    r = client.post(
        f"/v2/{repo('malformed-post')}/blobs/uploads/", params={"digest": digest}, content=b"x"
    )
    assert_oci_error(r, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
@pytest.mark.parametrize(
    "digest",
    [d for d in MALFORMED_DIGESTS.values() if d.startswith(("sha", "md5")) and d[-1] != ":"],
)
def test_blob_request_with_malformed_digest_is_digest_invalid(client, method, digest):
    name = repo("malformed-get")
    upload_blob(client, name, b"make the repository exist")
    r = client.request(method, f"/v2/{name}/blobs/{digest}")
    assert_oci_error(r, 400, "DIGEST_INVALID")


def test_sha512_blob_monolithic_upload_and_pull(client):
    name = repo("sha512")
    data = b"a blob addressed by sha512" * 100
    digest = upload_blob(client, name, data, "sha512")
    assert digest.startswith("sha512:") and len(digest) == 7 + 128
    r = client.get(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["docker-content-digest"] == digest


def test_sha512_blob_chunked_upload(client):
    name = repo("sha512-chunked")
    location = start_upload(client, name)
    r = client.patch(location, content=b"part one, ", headers={"Content-Range": "0-9"})
    r = client.patch(r.headers["location"], content=b"part two", headers={"Content-Range": "10-17"})
    assert r.status_code == 202
    digest = digest_of(b"part one, part two", "sha512")
    r = client.put(with_query(r.headers["location"], digest=digest))
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    assert client.head(f"/v2/{name}/blobs/{digest}").headers["content-length"] == "18"


def test_sha512_upload_with_wrong_digest_is_digest_invalid(client):
    name = repo("sha512-wrong")
    location = start_upload(client, name)
    r = client.put(with_query(location, digest=digest_of(b"other", "sha512")), content=b"data")
    assert_oci_error(r, 400, "DIGEST_INVALID")


def test_empty_blob_upload(client):
    name = repo("empty")
    digest = upload_blob(client, name, b"")
    r = client.get(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "0"


# == cross-repository mount ====================================================================
def test_mount_from_other_repository_returns_201_with_location(client):
    source, target = repo("mount-src"), repo("mount-dst")
    data = b"a blob shared between repositories"
    digest = upload_blob(client, source, data)
    r = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{target}/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data


def test_mount_from_repository_without_the_blob_falls_back_to_upload(client):
    source, target = repo("mount-empty"), repo("mount-fallback")
    upload_blob(client, source, b"something else in the source")
    data = b"only known to a third repository"
    digest = upload_blob(client, repo("third"), data)
    r = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 202, r.text
    assert r.headers["docker-upload-uuid"]
    assert_oci_error(client.head(f"/v2/{target}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    # The answer is an ordinary upload session that can be completed.
    r = client.put(with_query(r.headers["location"], digest=digest), content=data)
    assert r.status_code == 201
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data


def test_mount_from_unknown_repository_falls_back_to_upload(client):
    digest = digest_of(b"never uploaded anywhere " + uuid.uuid4().bytes)
    r = client.post(
        f"/v2/{repo('mount-t')}/blobs/uploads/", params={"mount": digest, "from": repo("ghost")}
    )
    assert r.status_code == 202
    assert r.headers["location"]


@pytest.mark.parametrize("source", ["Not/Valid", "a//b", "x\x00y", "a" * 300])
def test_mount_from_invalid_repository_name_falls_back_to_upload(client, source):
    digest = upload_blob(client, repo("mount-valid"), b"mountable " + uuid.uuid4().bytes)
    r = client.post(
        f"/v2/{repo('mount-invalid')}/blobs/uploads/", params={"mount": digest, "from": source}
    )
    assert r.status_code == 202, r.text
    assert r.headers["docker-upload-uuid"]


def test_mount_without_from_links_a_blob_known_to_the_registry(client):
    data = b"blob mounted without naming a source " + uuid.uuid4().bytes
    digest = upload_blob(client, repo("anywhere-src"), data)
    target = repo("anywhere-dst")
    r = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{target}/blobs/{digest}"
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data


def test_mount_without_from_of_unknown_blob_starts_upload(client):
    digest = digest_of(uuid.uuid4().bytes)
    r = client.post(f"/v2/{repo('mount-nofrom')}/blobs/uploads/", params={"mount": digest})
    assert r.status_code == 202
    assert r.headers["docker-upload-uuid"]


def test_mount_of_sha512_blob(client):
    source, target = repo("mount512-src"), repo("mount512-dst")
    data = b"sha512 blob to mount"
    digest = upload_blob(client, source, data, "sha512")
    r = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data


# == pulling blobs =============================================================================
def test_head_blob_returns_content_length_and_digest(client):
    name = repo("head")
    data = b"0123456789" * 10
    digest = upload_blob(client, name, data)
    r = client.head(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "100"
    assert r.headers["docker-content-digest"] == digest


def test_get_blob_returns_bytes_length_and_digest(client):
    name = repo("get")
    data = bytes(range(256)) * 64
    digest = upload_blob(client, name, data)
    r = client.get(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["docker-content-digest"] == digest


def test_get_blob_with_range_returns_206_and_content_range(client):
    name = repo("range")
    data = bytes(range(100))
    digest = upload_blob(client, name, data)
    r = client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206
    assert r.content == data[10:20]
    assert r.headers["content-range"] == "bytes 10-19/100"
    assert r.headers["content-length"] == "10"


def test_get_blob_with_open_ended_range(client):
    name = repo("range-open")
    data = bytes(range(100))
    digest = upload_blob(client, name, data)
    r = client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=90-"})
    assert r.status_code == 206
    assert r.content == data[90:]
    assert r.headers["content-range"] == "bytes 90-99/100"


def test_get_blob_with_range_past_the_end_is_truncated(client):
    name = repo("range-long")
    data = bytes(range(100))
    digest = upload_blob(client, name, data)
    r = client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=95-1000"})
    assert r.status_code == 206
    assert r.content == data[95:]
    assert r.headers["content-range"] == "bytes 95-99/100"


def test_get_blob_with_suffix_range(client):
    name = repo("range-suffix")
    data = bytes(range(100))
    digest = upload_blob(client, name, data)
    r = client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=-7"})
    assert r.status_code == 206
    assert r.content == data[-7:]
    assert r.headers["content-range"] == "bytes 93-99/100"


@pytest.mark.parametrize("wanted", ["bytes=100-", "bytes=200-300", "bytes=50-40", "bytes=-0"])
def test_get_blob_with_unsatisfiable_range_is_416(client, wanted):
    name = repo("range-bad")
    digest = upload_blob(client, name, bytes(range(100)))
    r = client.get(f"/v2/{name}/blobs/{digest}", headers={"Range": wanted})
    assert_oci_error(r, 416, "RANGE_INVALID")
    assert r.headers["content-range"] == "bytes */100"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_unknown_blob_is_404_blob_unknown(client, method):
    name = repo("noblob")
    upload_blob(client, name, b"the repository exists")
    r = client.request(method, f"/v2/{name}/blobs/{digest_of(uuid.uuid4().bytes)}")
    assert_oci_error(r, 404, "BLOB_UNKNOWN")


def test_blob_of_another_repository_is_blob_unknown(client):
    digest = upload_blob(client, repo("has-it"), b"private to its repository")
    r = client.get(f"/v2/{repo('lacks-it')}/blobs/{digest}")
    assert_oci_error(r, 404, "BLOB_UNKNOWN")


def test_delete_blob_returns_202_then_404(client):
    name = repo("blob-del")
    digest = upload_blob(client, name, b"to be deleted")
    r = client.delete(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 202
    assert_oci_error(client.head(f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_oci_error(client.get(f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_oci_error(client.delete(f"/v2/{name}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_blob_leaves_other_repositories_untouched(client):
    first, second = repo("del-a"), repo("del-b")
    data = b"shared then deleted from one repository " + uuid.uuid4().bytes
    digest = upload_blob(client, first, data)
    upload_blob(client, second, data)
    assert client.delete(f"/v2/{first}/blobs/{digest}").status_code == 202
    assert client.get(f"/v2/{second}/blobs/{digest}").content == data


def test_deleted_blob_can_be_uploaded_again(client):
    name = repo("reupload")
    data = b"comes back"
    digest = upload_blob(client, name, data)
    assert client.delete(f"/v2/{name}/blobs/{digest}").status_code == 202
    upload_blob(client, name, data)
    assert client.get(f"/v2/{name}/blobs/{digest}").content == data


# == manifests =================================================================================
def test_push_docker_schema2_manifest_by_tag_returns_201_location_and_digest(client):
    name = repo("docker")
    body = image_manifest(client, name, DOCKER_MANIFEST)
    r = put_manifest(client, name, "v1", body, DOCKER_MANIFEST)
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest_of(body)
    assert r.headers["location"] == f"/v2/{name}/manifests/{digest_of(body)}"


@pytest.mark.parametrize("media_type", [DOCKER_MANIFEST, OCI_MANIFEST])
def test_pull_manifest_by_tag_returns_exact_bytes_and_content_type(client, media_type):
    name = repo("pull-tag")
    body = image_manifest(client, name, media_type)
    push_manifest(client, name, "latest", body, media_type)
    r = client.get(f"/v2/{name}/manifests/latest", headers={"Accept": media_type})
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["content-type"] == media_type
    assert r.headers["content-length"] == str(len(body))
    assert r.headers["docker-content-digest"] == digest_of(body)


@pytest.mark.parametrize("media_type", [DOCKER_MANIFEST, OCI_MANIFEST])
def test_pull_manifest_by_digest_returns_docker_content_digest(client, media_type):
    name = repo("pull-digest")
    body = image_manifest(client, name, media_type)
    digest = push_manifest(client, name, "latest", body, media_type)
    r = client.get(f"/v2/{name}/manifests/{digest}")
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["content-type"] == media_type
    assert r.headers["docker-content-digest"] == digest


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_head_manifest_returns_length_type_and_digest(client, by):
    name = repo("head-manifest")
    body = image_manifest(client, name)
    digest = push_manifest(client, name, "v1", body)
    r = client.head(f"/v2/{name}/manifests/{'v1' if by == 'tag' else digest}")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len(body))
    assert r.headers["content-type"] == OCI_MANIFEST
    assert r.headers["docker-content-digest"] == digest


def test_push_manifest_by_digest_without_tag(client):
    name = repo("by-digest")
    body = image_manifest(client, name)
    digest = digest_of(body)
    r = put_manifest(client, name, digest, body)
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["location"] == f"/v2/{name}/manifests/{digest}"
    assert client.get(f"/v2/{name}/manifests/{digest}").content == body
    assert client.get(f"/v2/{name}/tags/list").json()["tags"] == []


def test_push_manifest_by_sha512_digest(client):
    name = repo("sha512-manifest")
    body = image_manifest(client, name)
    digest = digest_of(body, "sha512")
    r = put_manifest(client, name, digest, body)
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    r = client.get(f"/v2/{name}/manifests/{digest}")
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["docker-content-digest"] == digest
    assert client.head(f"/v2/{name}/manifests/{digest}").status_code == 200


def test_manifest_referencing_sha512_blobs(client):
    name = repo("sha512-blobs")
    config = b'{"architecture":"arm64","os":"linux"}'
    layer = b"layer addressed by sha512"
    config_digest = upload_blob(client, name, config, "sha512")
    layer_digest = upload_blob(client, name, layer, "sha512")
    body = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
        }
    )
    push_manifest(client, name, "v1", body)
    assert client.get(f"/v2/{name}/manifests/v1").content == body


def test_push_manifest_by_mismatching_digest_is_digest_invalid(client):
    name = repo("mismatch")
    body = image_manifest(client, name)
    r = put_manifest(client, name, digest_of(body + b" "), body)
    assert_oci_error(r, 400, "DIGEST_INVALID")
    assert_oci_error(client.get(f"/v2/{name}/manifests/{digest_of(body)}"), 404, "MANIFEST_UNKNOWN")


def test_push_manifest_by_sha512_digest_of_other_content_is_digest_invalid(client):
    name = repo("mismatch512")
    body = image_manifest(client, name)
    r = put_manifest(client, name, digest_of(b"other", "sha512"), body)
    assert_oci_error(r, 400, "DIGEST_INVALID")


def test_push_docker_manifest_list_roundtrip(client):
    name = repo("list")
    amd = push_image(client, name, "amd64", DOCKER_MANIFEST)
    arm = push_image(client, name, "arm64", DOCKER_MANIFEST)
    sizes = {d: len(client.get(f"/v2/{name}/manifests/{d}").content) for d in (amd, arm)}
    body = encode(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": amd,
                    "size": sizes[amd],
                    "platform": {"architecture": "amd64", "os": "linux"},
                },
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": arm,
                    "size": sizes[arm],
                    "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                },
            ],
        }
    )
    digest = push_manifest(client, name, "multi", body, DOCKER_MANIFEST_LIST)
    r = client.get(f"/v2/{name}/manifests/multi", headers={"Accept": DOCKER_MANIFEST_LIST})
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["content-type"] == DOCKER_MANIFEST_LIST
    assert r.headers["docker-content-digest"] == digest


def _index(children: list[tuple[str, int]], media_type: str = OCI_INDEX, **extra: Any) -> bytes:
    return encode(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST,
                    "digest": digest,
                    "size": size,
                    "platform": {"architecture": f"arch{i}", "os": "linux"},
                }
                for i, (digest, size) in enumerate(children)
            ],
            **extra,
        }
    )


def test_push_oci_index_roundtrip(client):
    name = repo("index")
    children = []
    for arch in ("amd64", "arm64", "s390x"):
        body = image_manifest(client, name, seed=arch)
        children.append((push_manifest(client, name, digest_of(body), body), len(body)))
    body = _index(children, annotations={"org.example": "multi-arch"})
    digest = push_manifest(client, name, "multi", body, OCI_INDEX)
    for reference in ("multi", digest):
        r = client.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": OCI_INDEX})
        assert r.status_code == 200
        assert r.content == body
        assert r.headers["content-type"] == OCI_INDEX
        assert r.headers["docker-content-digest"] == digest


def test_oci_index_with_unknown_child_is_manifest_blob_unknown(client):
    name = repo("index-missing")
    body = image_manifest(client, name)
    known = push_manifest(client, name, "v1", body)
    unknown = digest_of(b"a manifest that was never pushed")
    r = put_manifest(client, name, "multi", _index([(known, len(body)), (unknown, 100)]), OCI_INDEX)
    assert_oci_error(r, 404, "MANIFEST_BLOB_UNKNOWN")
    assert_oci_error(client.get(f"/v2/{name}/manifests/multi"), 404, "MANIFEST_UNKNOWN")


def test_docker_manifest_list_with_unknown_child_is_manifest_blob_unknown(client):
    name = repo("list-missing")
    unknown = digest_of(b"never pushed " + uuid.uuid4().bytes)
    body = _index([(unknown, 321)], DOCKER_MANIFEST_LIST)
    r = put_manifest(client, name, "multi", body, DOCKER_MANIFEST_LIST)
    assert_oci_error(r, 404, "MANIFEST_BLOB_UNKNOWN")


def test_index_child_from_another_repository_is_manifest_blob_unknown(client):
    elsewhere = repo("child-home")
    body = image_manifest(client, elsewhere)
    child = push_manifest(client, elsewhere, "v1", body)
    name = repo("child-away")
    r = put_manifest(client, name, "multi", _index([(child, len(body))]), OCI_INDEX)
    assert_oci_error(r, 404, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize("missing", ["config", "layer"])
def test_manifest_referencing_unknown_blob_is_manifest_blob_unknown(client, missing):
    name = repo("blob-missing")
    config = b'{"os":"linux"}'
    layer = b"layer bytes " + uuid.uuid4().bytes
    if missing != "config":
        upload_blob(client, name, config)
    if missing != "layer":
        upload_blob(client, name, layer)
    body = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )
    r = put_manifest(client, name, "v1", body)
    error = assert_oci_error(r, 404, "MANIFEST_BLOB_UNKNOWN")
    missing_digest = digest_of(config if missing == "config" else layer)
    assert missing_digest in json.dumps(error)


def test_manifest_referencing_blob_of_another_repository_is_manifest_blob_unknown(client):
    elsewhere, name = repo("blob-home"), repo("blob-away")
    config, layer = b'{"os":"linux"}', b"layer only in the other repository"
    upload_blob(client, elsewhere, config)
    upload_blob(client, elsewhere, layer)
    upload_blob(client, name, config)
    body = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )
    assert_oci_error(put_manifest(client, name, "v1", body), 404, "MANIFEST_BLOB_UNKNOWN")


def test_manifest_with_nondistributable_layer_needs_no_blob(client):
    name = repo("foreign")
    config = b'{"os":"windows"}'
    upload_blob(client, name, config)
    body = encode(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(DOCKER_CONFIG, config),
            "layers": [
                descriptor(
                    DOCKER_FOREIGN_LAYER,
                    b"foreign layer bytes",
                    urls=["https://example.com/layer.tar.gz"],
                )
            ],
        }
    )
    push_manifest(client, name, "win", body, DOCKER_MANIFEST)
    assert client.get(f"/v2/{name}/manifests/win").content == body


INVALID_MANIFESTS = {
    "not-json": b"this is not json",
    "truncated-json": b'{"schemaVersion": 2, "mediaType": ',
    "json-array": b"[]",
    "empty-body": b"",
    "schema-version-1": json.dumps(
        {"schemaVersion": 1, "mediaType": OCI_MANIFEST, "config": None, "layers": []}
    ).encode(),
    "schema-version-3": json.dumps(
        {
            "schemaVersion": 3,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(b"{}"), "size": 2},
            "layers": [],
        }
    ).encode(),
    "schema-version-missing": json.dumps(
        {
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(b"{}"), "size": 2},
            "layers": [],
        }
    ).encode(),
    "missing-config": json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}
    ).encode(),
    "config-with-bad-digest": json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": "sha256:nothex", "size": 2},
            "layers": [],
        }
    ).encode(),
    "negative-size": json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(b"{}"), "size": -1},
            "layers": [],
        }
    ).encode(),
    "index-without-manifests": json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}).encode(),
}


@pytest.mark.parametrize("body", INVALID_MANIFESTS.values(), ids=INVALID_MANIFESTS.keys())
def test_invalid_manifest_is_manifest_invalid(client, body):
    name = repo("invalid")
    media_type = OCI_INDEX if b"index" in body else OCI_MANIFEST
    r = put_manifest(client, name, "v1", body, media_type)
    assert_oci_error(r, 400, "MANIFEST_INVALID")
    assert_oci_error(client.get(f"/v2/{name}/manifests/v1"), 404, "MANIFEST_UNKNOWN")


NUL_PLACES = {
    "annotation-value": {"annotations": {"org.example": "a\u0000b"}},
    "annotation-key": {"annotations": {"org.\u0000example": "x"}},
    "artifact-type": {"artifactType": "application/x\u0000"},
    "layer-annotation": {"layer_annotations": {"k": "\u0000"}},
}


@pytest.mark.parametrize("extra", NUL_PLACES.values(), ids=NUL_PLACES.keys())
def test_manifest_with_nul_in_a_string_is_manifest_invalid_and_nothing_breaks(client, extra):
    """JSON allows "\\u0000", Postgres text does not: accepting one would wedge the views."""
    name = repo("nul")
    config, layer = b"{}", b"layer " + uuid.uuid4().bytes
    upload_blob(client, name, config)
    upload_blob(client, name, layer)
    extra = dict(extra)
    layer_descriptor = descriptor(OCI_LAYER, layer)
    if "layer_annotations" in extra:
        layer_descriptor["annotations"] = extra.pop("layer_annotations")
    body = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_EMPTY, config),
            "layers": [layer_descriptor],
            **extra,
        }
    )
    assert b"\\u0000" in body
    assert_oci_error(put_manifest(client, name, "bad", body), 400, "MANIFEST_INVALID")
    # The registry still records and shows what comes next.
    digest = push_image(client, name, "good")
    assert client.get(f"/v2/{name}/tags/list").json()["tags"] == ["good"]
    assert client.head(f"/v2/{name}/manifests/good").headers["docker-content-digest"] == digest


def test_manifest_media_type_contradicting_content_type_is_manifest_invalid(client):
    name = repo("type-clash")
    body = image_manifest(client, name, OCI_MANIFEST)
    r = put_manifest(client, name, "v1", body, DOCKER_MANIFEST)
    assert_oci_error(r, 400, "MANIFEST_INVALID")


def test_oci_manifest_without_media_type_field_takes_content_type(client):
    name = repo("no-media-type")
    config, layer = b'{"os":"linux"}', b"layer " + uuid.uuid4().bytes
    upload_blob(client, name, config)
    upload_blob(client, name, layer)
    body = encode(
        {
            "schemaVersion": 2,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )
    push_manifest(client, name, "v1", body, OCI_MANIFEST)
    r = client.get(f"/v2/{name}/manifests/v1")
    assert r.content == body
    assert r.headers["content-type"] == OCI_MANIFEST


def test_manifest_over_4_mib_is_413(client):
    name = repo("huge")
    config = b'{"os":"linux"}'
    upload_blob(client, name, config)
    body = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [],
            "annotations": {"padding": "x" * (4 * MIB)},
        }
    )
    assert len(body) > 4 * MIB
    r = put_manifest(client, name, "v1", body)
    assert r.status_code == 413, r.text
    assert_oci_error(r, 413, r.json()["errors"][0]["code"])
    assert_oci_error(client.get(f"/v2/{name}/manifests/v1"), 404, "MANIFEST_UNKNOWN")


def test_manifest_of_almost_4_mib_is_accepted(client):
    name = repo("big")
    config = b'{"os":"linux"}'
    upload_blob(client, name, config)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [],
        "annotations": {"padding": ""},
    }
    overhead = len(encode(document))
    document["annotations"]["padding"] = "x" * (4 * MIB - overhead)
    body = encode(document)
    assert len(body) == 4 * MIB
    push_manifest(client, name, "v1", body)
    assert client.get(f"/v2/{name}/manifests/v1").content == body


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("reference", ["no-such-tag", "digest"])
def test_unknown_manifest_is_404_manifest_unknown(client, method, reference):
    name = repo("nomanifest")
    push_image(client, name, "exists")
    if reference == "digest":
        reference = digest_of(uuid.uuid4().bytes)
    r = client.request(method, f"/v2/{name}/manifests/{reference}")
    assert_oci_error(r, 404, "MANIFEST_UNKNOWN")


def test_manifest_of_another_repository_is_unknown(client):
    digest = push_image(client, repo("manifest-home"), "v1")
    r = client.get(f"/v2/{repo('manifest-away')}/manifests/{digest}")
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] in {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}


def test_push_manifest_with_invalid_tag_is_rejected(client):
    name = repo("badtag")
    body = image_manifest(client, name)
    for tag in ("-leading-dash", ".leading-dot", "x" * 129):
        r = put_manifest(client, name, tag, body)
        assert r.status_code == 400, (tag, r.text)
        assert_oci_error(r, 400, r.json()["errors"][0]["code"])


def test_tag_of_128_characters_is_accepted(client):
    name = repo("longtag")
    tag = "T" + "a" * 127
    push_image(client, name, tag)
    assert client.get(f"/v2/{name}/tags/list").json()["tags"] == [tag]


def test_pushing_a_tag_again_moves_it(client):
    name = repo("move")
    first = push_image(client, name, "latest")
    second = push_image(client, name, "latest")
    assert first != second
    r = client.get(f"/v2/{name}/manifests/latest")
    assert r.headers["docker-content-digest"] == second
    assert client.get(f"/v2/{name}/manifests/{first}").status_code == 200


def test_pushing_the_same_manifest_again_is_idempotent(client):
    name = repo("again")
    body = image_manifest(client, name)
    first = put_manifest(client, name, "v1", body)
    second = put_manifest(client, name, "v1", body)
    assert first.status_code == second.status_code == 201
    assert first.headers["docker-content-digest"] == second.headers["docker-content-digest"]
    assert client.get(f"/v2/{name}/tags/list").json()["tags"] == ["v1"]


def test_delete_manifest_by_digest_returns_202_and_removes_its_tags(client):
    name = repo("del-digest")
    body = image_manifest(client, name)
    digest = push_manifest(client, name, "v1", body)
    push_manifest(client, name, "v1.0", body)
    other = push_image(client, name, "other")
    r = client.delete(f"/v2/{name}/manifests/{digest}")
    assert r.status_code == 202
    assert_oci_error(client.get(f"/v2/{name}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    assert_oci_error(client.get(f"/v2/{name}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert_oci_error(client.head(f"/v2/{name}/manifests/v1.0"), 404, "MANIFEST_UNKNOWN")
    assert client.get(f"/v2/{name}/tags/list").json()["tags"] == ["other"]
    assert client.get(f"/v2/{name}/manifests/other").headers["docker-content-digest"] == other


def test_delete_tag_leaves_manifest_reachable_by_digest(client):
    name = repo("del-tag")
    body = image_manifest(client, name)
    digest = push_manifest(client, name, "v1", body)
    push_manifest(client, name, "stable", body)
    r = client.delete(f"/v2/{name}/manifests/v1")
    assert r.status_code == 202
    assert_oci_error(client.get(f"/v2/{name}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert client.get(f"/v2/{name}/manifests/{digest}").content == body
    assert client.get(f"/v2/{name}/manifests/stable").content == body
    assert client.get(f"/v2/{name}/tags/list").json()["tags"] == ["stable"]


@pytest.mark.parametrize("reference", ["never-pushed", "digest"])
def test_delete_unknown_manifest_is_404_manifest_unknown(client, reference):
    name = repo("del-unknown")
    push_image(client, name, "v1")
    if reference == "digest":
        reference = digest_of(uuid.uuid4().bytes)
    assert_oci_error(client.delete(f"/v2/{name}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")


def test_deleted_manifest_can_be_pushed_again(client):
    name = repo("repush")
    body = image_manifest(client, name)
    digest = push_manifest(client, name, "v1", body)
    assert client.delete(f"/v2/{name}/manifests/{digest}").status_code == 202
    push_manifest(client, name, "v2", body)
    assert client.get(f"/v2/{name}/manifests/v2").content == body
    assert client.get(f"/v2/{name}/tags/list").json()["tags"] == ["v2"]


def test_artifact_manifest_with_artifact_type_roundtrip(client):
    name = repo("artifact")
    config, payload = b"{}", b'{"spdxVersion":"SPDX-2.3"}'
    upload_blob(client, name, config)
    upload_blob(client, name, payload)
    body = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SBOM_TYPE,
            "config": descriptor(OCI_EMPTY, config),
            "layers": [descriptor("application/spdx+json", payload)],
        }
    )
    digest = push_manifest(client, name, "sbom", body)
    r = client.get(f"/v2/{name}/manifests/sbom")
    assert r.content == body
    assert r.headers["content-type"] == OCI_MANIFEST
    assert r.headers["docker-content-digest"] == digest


def test_push_manifest_with_subject_answers_oci_subject_header(client):
    name = repo("subject")
    subject = push_image(client, name, "v1")
    config, payload = b"{}", b"signature bytes"
    upload_blob(client, name, config)
    upload_blob(client, name, payload)
    subject_size = len(client.get(f"/v2/{name}/manifests/{subject}").content)
    body = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIGNATURE_TYPE,
            "config": descriptor(OCI_EMPTY, config),
            "layers": [descriptor("application/octet-stream", payload)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
        }
    )
    r = put_manifest(client, name, digest_of(body), body)
    assert r.status_code == 201, r.text
    assert r.headers["oci-subject"] == subject


def test_push_manifest_without_subject_has_no_oci_subject_header(client):
    name = repo("nosubject")
    r = put_manifest(client, name, "v1", image_manifest(client, name))
    assert r.status_code == 201
    assert "oci-subject" not in r.headers


def test_oci_index_with_subject_answers_oci_subject_header(client):
    name = repo("index-subject")
    subject = push_image(client, name, "v1")
    body = image_manifest(client, name, seed="child")
    child = push_manifest(client, name, digest_of(body), body)
    subject_size = len(client.get(f"/v2/{name}/manifests/{subject}").content)
    index = _index(
        [(child, len(body))],
        artifactType=SIGNATURE_TYPE,
        subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
    )
    r = put_manifest(client, name, digest_of(index), index, OCI_INDEX)
    assert r.status_code == 201, r.text
    assert r.headers["oci-subject"] == subject
    listed = client.get(f"/v2/{name}/referrers/{subject}").json()["manifests"]
    assert [(d["digest"], d["mediaType"]) for d in listed] == [(digest_of(index), OCI_INDEX)]


# == tags ======================================================================================
def test_tags_list_is_sorted(client):
    name = repo("tags")
    body = image_manifest(client, name)
    tags = ["latest", "v1.0.0", "1.0", "Alpha", "beta_2", "v1.10.0", "v1.9.0", "A-b", "a.b"]
    for tag in tags:
        push_manifest(client, name, tag, body)
    r = client.get(f"/v2/{name}/tags/list")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"name": name, "tags": sorted(tags)}
    assert "link" not in r.headers


def test_tags_list_paginates_with_n_last_and_link(client):
    name = repo("pages")
    body = image_manifest(client, name)
    tags = [f"t{i:02d}" for i in range(7)]
    for tag in tags:
        push_manifest(client, name, tag, body)
    seen: list[str] = []
    url = f"/v2/{name}/tags/list?n=3"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200
        page = r.json()["tags"]
        assert len(page) <= 3
        seen += page
        pages += 1
        link = r.headers.get("link")
        if link is None:
            break
        assert link.endswith('>; rel="next"'), link
        url = link[1 : link.index(">")]
        assert url.startswith(f"/v2/{name}/tags/list?")
        assert "n=3" in url and f"last={page[-1]}" in url
    assert seen == tags
    assert pages == 3


def test_tags_list_first_page_exact_link(client):
    name = repo("link")
    body = image_manifest(client, name)
    for tag in ("a", "b", "c"):
        push_manifest(client, name, tag, body)
    r = client.get(f"/v2/{name}/tags/list", params={"n": 2})
    assert r.json() == {"name": name, "tags": ["a", "b"]}
    assert r.headers["link"] == f'</v2/{name}/tags/list?n=2&last=b>; rel="next"'


def test_tags_list_last_page_has_no_link(client):
    name = repo("nolink")
    body = image_manifest(client, name)
    for tag in ("a", "b"):
        push_manifest(client, name, tag, body)
    r = client.get(f"/v2/{name}/tags/list", params={"n": 2})
    assert r.json()["tags"] == ["a", "b"]
    assert "link" not in r.headers


def test_tags_list_last_without_n(client):
    name = repo("last")
    body = image_manifest(client, name)
    for tag in ("a", "b", "c", "d"):
        push_manifest(client, name, tag, body)
    r = client.get(f"/v2/{name}/tags/list", params={"last": "b"})
    assert r.json()["tags"] == ["c", "d"]
    r = client.get(f"/v2/{name}/tags/list", params={"last": "bb", "n": 1})
    assert r.json()["tags"] == ["c"]


def test_tags_list_with_n_zero_is_empty(client):
    name = repo("nzero")
    push_image(client, name, "v1")
    r = client.get(f"/v2/{name}/tags/list", params={"n": 0})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": name, "tags": []}


def test_tags_list_with_huge_n_returns_everything(client):
    name = repo("nhuge")
    push_image(client, name, "v1")
    r = client.get(f"/v2/{name}/tags/list", params={"n": "9" * 30})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["v1"]
    assert "link" not in r.headers


def test_tags_list_of_repository_without_tags_is_empty(client):
    name = repo("notags")
    upload_blob(client, name, b"a blob but no tags")
    r = client.get(f"/v2/{name}/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": name, "tags": []}


def test_tags_list_last_with_nul_character(client):
    name = repo("lastnul")
    body = image_manifest(client, name)
    for tag in ("a", "a0", "b"):
        push_manifest(client, name, tag, body)
    r = client.get(f"/v2/{name}/tags/list", params={"last": "a\x00"})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["a0", "b"]


def test_tags_list_of_unknown_repository_is_name_unknown(client):
    assert_oci_error(client.get(f"/v2/{repo('ghost')}/tags/list"), 404, "NAME_UNKNOWN")


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "²", "١", "0x10", " 1"])
def test_tags_list_with_invalid_n_is_400(client, n):
    name = repo("badn")
    push_image(client, name, "v1")
    r = client.get(f"/v2/{name}/tags/list", params={"n": n})
    assert_oci_error(r, 400, "PAGINATION_NUMBER_INVALID")


# == catalog ===================================================================================
def test_catalog_lists_repositories_sorted(client):
    prefix = f"cat{uuid.uuid4().hex[:10]}"
    names = [f"{prefix}/c", f"{prefix}/a", f"{prefix}/b/nested"]
    for name in names:
        upload_blob(client, name, b"catalog entry")
    r = client.get("/v2/_catalog")
    assert r.status_code == 200
    repositories = r.json()["repositories"]
    assert repositories == sorted(repositories)
    assert [n for n in repositories if n.startswith(prefix)] == sorted(names)


def test_catalog_paginates_with_n_last_and_link(client):
    prefix = f"pag{uuid.uuid4().hex[:10]}"
    names = [f"{prefix}/r{i}" for i in range(5)]
    for name in names:
        upload_blob(client, name, b"catalog page entry")
    r = client.get("/v2/_catalog", params={"n": 2, "last": prefix})
    assert r.status_code == 200
    assert r.json() == {"repositories": names[:2]}
    assert r.headers["link"] == f'</v2/_catalog?n=2&last={names[1]}>; rel="next"'
    r = client.get(r.headers["link"][1 : r.headers["link"].index(">")])
    assert r.json()["repositories"] == names[2:4]
    r = client.get("/v2/_catalog", params={"n": 2, "last": names[3]})
    assert r.json()["repositories"][0] == names[4]


def test_catalog_with_n_zero_is_empty(client):
    upload_blob(client, repo("cat-zero"), b"x")
    r = client.get("/v2/_catalog", params={"n": 0})
    assert r.status_code == 200, r.text
    assert r.json() == {"repositories": []}


@pytest.mark.parametrize("n", ["-5", "ten", "²"])
def test_catalog_with_invalid_n_is_400(client, n):
    assert_oci_error(client.get("/v2/_catalog", params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")


# == referrers =================================================================================
def test_referrers_returns_oci_index_of_artifacts(client):
    name = repo("referrers")
    subject = push_image(client, name, "v1")
    sbom, sbom_body = push_artifact(client, name, subject, SBOM_TYPE, {"kind": "sbom"})
    signature, signature_body = push_artifact(client, name, subject, SIGNATURE_TYPE)
    r = client.get(f"/v2/{name}/referrers/{subject}")
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    listed = {d["digest"]: d for d in index["manifests"]}
    assert listed == {
        sbom: {
            "mediaType": OCI_MANIFEST,
            "digest": sbom,
            "size": len(sbom_body),
            "artifactType": SBOM_TYPE,
            "annotations": {"kind": "sbom"},
        },
        signature: {
            "mediaType": OCI_MANIFEST,
            "digest": signature,
            "size": len(signature_body),
            "artifactType": SIGNATURE_TYPE,
        },
    }
    assert "oci-filters-applied" not in r.headers


def test_referrers_filter_by_artifact_type_sets_filters_applied(client):
    name = repo("ref-filter")
    subject = push_image(client, name, "v1")
    sbom, _ = push_artifact(client, name, subject, SBOM_TYPE)
    push_artifact(client, name, subject, SIGNATURE_TYPE)
    r = client.get(f"/v2/{name}/referrers/{subject}", params={"artifactType": SBOM_TYPE})
    assert r.status_code == 200
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in r.json()["manifests"]] == [sbom]


def test_referrers_filter_matching_nothing_is_empty(client):
    name = repo("ref-none")
    subject = push_image(client, name, "v1")
    push_artifact(client, name, subject, SBOM_TYPE)
    r = client.get(
        f"/v2/{name}/referrers/{subject}", params={"artifactType": "application/x-nothing"}
    )
    assert r.status_code == 200
    assert r.json()["manifests"] == []
    assert r.headers["oci-filters-applied"] == "artifactType"


def test_referrers_uses_config_media_type_when_artifact_type_is_absent(client):
    name = repo("ref-config")
    subject = push_image(client, name, "v1")
    digest, _ = push_artifact(client, name, subject, None, config_type=SIGNATURE_TYPE)
    listed = client.get(f"/v2/{name}/referrers/{subject}").json()["manifests"]
    assert [(d["digest"], d["artifactType"]) for d in listed] == [(digest, SIGNATURE_TYPE)]


def test_referrers_filter_with_nul_character_is_empty(client):
    name = repo("ref-nul")
    subject = push_image(client, name, "v1")
    push_artifact(client, name, subject, SBOM_TYPE)
    r = client.get(f"/v2/{name}/referrers/{subject}", params={"artifactType": SBOM_TYPE + "\x00"})
    assert r.status_code == 200, r.text
    assert r.json()["manifests"] == []
    assert r.headers["oci-filters-applied"] == "artifactType"


def test_referrers_lists_an_index_without_artifact_type_with_none(client):
    name = repo("ref-index")
    subject = push_image(client, name, "v1")
    body = image_manifest(client, name, seed="child")
    child = push_manifest(client, name, digest_of(body), body)
    subject_size = len(client.get(f"/v2/{name}/manifests/{subject}").content)
    index = _index(
        [(child, len(body))],
        annotations={"org.example": "index"},
        subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
    )
    digest = push_manifest(client, name, digest_of(index), index, OCI_INDEX)
    listed = client.get(f"/v2/{name}/referrers/{subject}").json()["manifests"]
    assert listed == [
        {
            "mediaType": OCI_INDEX,
            "digest": digest,
            "size": len(index),
            "annotations": {"org.example": "index"},
        }
    ]


def test_referrers_of_unknown_subject_is_empty_index(client):
    name = repo("ref-unknown")
    push_image(client, name, "v1")
    r = client.get(f"/v2/{name}/referrers/{digest_of(uuid.uuid4().bytes)}")
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_INDEX
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_pushed_before_their_subject_are_listed(client):
    name = repo("ref-early")
    body = image_manifest(client, name)
    subject = digest_of(body)
    config, payload = b"{}", b"early signature"
    upload_blob(client, name, config)
    upload_blob(client, name, payload)
    artifact = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIGNATURE_TYPE,
            "config": descriptor(OCI_EMPTY, config),
            "layers": [descriptor("application/octet-stream", payload)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(body)},
        }
    )
    r = put_manifest(client, name, digest_of(artifact), artifact)
    assert r.status_code == 201, r.text
    assert r.headers["oci-subject"] == subject
    listed = client.get(f"/v2/{name}/referrers/{subject}").json()["manifests"]
    assert [d["digest"] for d in listed] == [digest_of(artifact)]


def test_deleted_referrer_is_no_longer_listed(client):
    name = repo("ref-delete")
    subject = push_image(client, name, "v1")
    gone, _ = push_artifact(client, name, subject, SBOM_TYPE)
    kept, _ = push_artifact(client, name, subject, SIGNATURE_TYPE)
    assert client.delete(f"/v2/{name}/manifests/{gone}").status_code == 202
    listed = client.get(f"/v2/{name}/referrers/{subject}").json()["manifests"]
    assert [d["digest"] for d in listed] == [kept]


def test_referrers_are_per_repository(client):
    name = repo("ref-home")
    subject = push_image(client, name, "v1")
    push_artifact(client, name, subject, SBOM_TYPE)
    r = client.get(f"/v2/{repo('ref-other')}/referrers/{subject}")
    assert r.status_code == 200
    assert r.json()["manifests"] == []


@pytest.mark.parametrize("digest", MALFORMED_DIGESTS.values(), ids=MALFORMED_DIGESTS.keys())
def test_referrers_with_invalid_digest_is_400(client, digest):
    name = repo("ref-invalid")
    push_image(client, name, "v1")
    r = client.get(f"/v2/{name}/referrers/{digest}")
    assert r.status_code == 400, r.text
    assert_oci_error(r, 400, "DIGEST_INVALID")


# == repository names ==========================================================================
def _full_cycle(client: httpx.Client, name: str) -> None:
    """Push a blob and an image, pull them, list tags and referrers, delete: all by `name`."""
    data = f"blob of {name}".encode()
    digest = upload_blob(client, name, data)
    assert client.get(f"/v2/{name}/blobs/{digest}").content == data
    location = start_upload(client, name)
    r = client.patch(location, content=b"chunk", headers={"Content-Range": "0-4"})
    assert r.status_code == 202, r.text
    assert client.get(r.headers["location"]).status_code == 204
    assert client.put(with_query(r.headers["location"], digest=digest_of(b"chunk"))).is_success
    body = image_manifest(client, name)
    manifest_digest = push_manifest(client, name, "latest", body)
    assert client.get(f"/v2/{name}/manifests/latest").content == body
    assert client.head(f"/v2/{name}/manifests/{manifest_digest}").status_code == 200
    assert client.get(f"/v2/{name}/tags/list").json() == {"name": name, "tags": ["latest"]}
    referrers = client.get(f"/v2/{name}/referrers/{manifest_digest}")
    assert referrers.status_code == 200 and referrers.json()["manifests"] == []
    assert client.delete(f"/v2/{name}/manifests/latest").status_code == 202
    assert client.get(f"/v2/{name}/manifests/{manifest_digest}").status_code == 200


def test_names_with_several_components(client):
    suffix = uuid.uuid4().hex[:8]
    _full_cycle(client, f"a{suffix}/b/c")
    _full_cycle(client, f"org-{suffix}/team.x/sub_project/deep__er/image")


@pytest.mark.parametrize(
    "word",
    [
        "manifests",
        "blobs",
        "tags",
        "referrers",
        "uploads",
        "blobs/uploads",
        "tags/list",
        "manifests/latest",
        "catalog",
        "v2",
    ],
)
def test_names_containing_path_words(client, word):
    _full_cycle(client, f"w{uuid.uuid4().hex[:8]}/{word}")


def test_name_made_only_of_path_words(client):
    suffix = uuid.uuid4().hex[:6]
    _full_cycle(client, f"manifests{suffix}/blobs/uploads/tags/list/referrers/manifests")


def test_name_of_255_characters_is_accepted(client):
    prefix = f"long{uuid.uuid4().hex[:8]}/"
    name = prefix + "a" * (255 - len(prefix))
    assert len(name) == 255
    upload_blob(client, name, b"long name")
    assert client.get(f"/v2/{name}/tags/list").status_code == 200


INVALID_NAMES = {
    "uppercase": "conf/UpperCase",
    "trailing-slash": "conf/trailing/",
    "empty-component": "conf//double",
    "leading-separator": "conf/-dash",
    "trailing-separator": "conf/dash-",
    "double-dot": "conf/a..b",
    "triple-underscore": "conf/a___b",
    "too-long": "conf/" + "a" * 251,
    "space": "conf/a b",
    "unicode": "conf/café",
}


@pytest.mark.parametrize("name", INVALID_NAMES.values(), ids=INVALID_NAMES.keys())
@pytest.mark.parametrize(
    "method,endpoint",
    [
        ("GET", "tags/list"),
        ("GET", "manifests/latest"),
        ("HEAD", "manifests/latest"),
        ("PUT", "manifests/latest"),
        ("DELETE", "manifests/latest"),
        ("GET", f"blobs/{digest_of(b'x')}"),
        ("POST", "blobs/uploads/"),
        ("GET", f"referrers/{digest_of(b'x')}"),
    ],
)
def test_invalid_name_is_name_invalid(client, name, method, endpoint):
    path = quote(f"/v2/{name}/{endpoint}", safe="/:")
    r = client.request(method, path, content=b"" if method in ("PUT", "POST") else None)
    assert_oci_error(r, 400, "NAME_INVALID")


# == errors in general =========================================================================
def test_method_not_allowed_on_a_known_route_is_an_oci_error(client):
    name = repo("method")
    r = client.post(f"/v2/{name}/tags/list")
    assert 400 <= r.status_code < 500 and r.status_code != 404
    assert_oci_error(r, r.status_code, r.json()["errors"][0]["code"])


def test_unknown_v2_path_is_a_404_oci_error(client):
    r = client.get("/v2/conf/nothing-here/unknown/endpoint")
    assert r.status_code == 404
    assert_oci_error(r, 404, r.json()["errors"][0]["code"])


# == robustness ================================================================================
_NAME_ALPHABET = "abcAZ09._-/:%@+ "
_names = st.one_of(
    st.sampled_from(["fuzz/base", "fuzz/base/manifests", "a", "fuzz/BASE", "", "fuzz/\x00"]),
    st.text(_NAME_ALPHABET, min_size=0, max_size=40),
    st.text(min_size=0, max_size=10),
)
_digests = st.one_of(
    st.sampled_from(
        [digest_of(b"fuzz blob"), digest_of(b"fuzz blob", "sha512"), digest_of(b"absent")]
    ),
    st.sampled_from(list(MALFORMED_DIGESTS.values())),
    st.builds(lambda a, h: f"{a}:{h}", st.text("sha2561md+._-", max_size=8), st.text(max_size=70)),
    st.text(max_size=20),
)
_header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40
).map(str.strip)
_long_numbers = st.sampled_from(["9" * 5000, "0" * 5000 + "1", "1" + "0" * 30])
_ranges = st.one_of(
    _header_values,
    st.builds(
        "{}{}-{}".format,
        st.sampled_from(["bytes=", "bytes ", ""]),
        st.one_of(st.just(""), st.integers(-5, 2**70).map(str), _long_numbers),
        st.one_of(st.just(""), st.integers(-5, 2**70).map(str), _long_numbers),
    ),
)
_numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    _header_values,
    _long_numbers,
    st.sampled_from(["", "0", "²", "١"]),
)


_METHODS = {
    "manifest": ["GET", "HEAD", "PUT", "DELETE"],
    "blob": ["GET", "HEAD", "DELETE"],
    "upload": ["GET", "PATCH", "PUT", "DELETE"],
    "uploads": ["POST"],
    "tags": ["GET"],
    "referrers": ["GET"],
    "catalog": ["GET"],
    "ping": ["GET", "HEAD"],
}


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], dict[str, str], bytes]:
    # Half the time aim at real content (the `fuzz_target` repository, its blobs, its tag and
    # a live upload), so the random parts reach the handlers rather than the name check.
    name = draw(st.one_of(st.just("fuzz/base"), _names))
    kind = draw(st.sampled_from(list(_METHODS)))
    real = [digest_of(b"fuzz blob"), digest_of(b"fuzz blob", "sha512"), "latest"]
    reference = draw(st.one_of(st.sampled_from(real), _digests, st.just("-bad"), _names))
    upload_id = draw(st.one_of(st.just("UPLOAD"), st.uuids().map(str), st.text(max_size=40)))
    path = {
        "manifest": f"{name}/manifests/{reference}",
        "blob": f"{name}/blobs/{reference}",
        "upload": f"{name}/blobs/uploads/{upload_id}",
        "uploads": f"{name}/blobs/uploads/",
        "tags": f"{name}/tags/list",
        "referrers": f"{name}/referrers/{reference}",
        "catalog": "_catalog",
        "ping": "",
    }[kind]
    if draw(st.integers(0, 4)) == 0:
        path = draw(st.text(_NAME_ALPHABET + "\\?#&=~", max_size=60))
    everything = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]
    method = draw(st.one_of(st.sampled_from(_METHODS[kind]), st.sampled_from(everything)))
    headers = {}
    if draw(st.booleans()):
        headers["Range"] = draw(_ranges)
    if draw(st.booleans()):
        headers["Content-Range"] = draw(_ranges)
    if draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.one_of(st.sampled_from([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST]), _header_values)
        )
    params = {}
    for key in ("digest", "mount", "from", "n", "last", "artifactType"):
        if draw(st.integers(0, 3)) == 0:
            params[key] = draw(
                {"digest": _digests, "mount": _digests, "n": _numbers}.get(key, _names)
            )
    body = draw(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from([b"{}", b'{"schemaVersion":2}', b"[]", b"null"]),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(
                            [
                                "schemaVersion",
                                "mediaType",
                                "config",
                                "layers",
                                "manifests",
                                "subject",
                                "digest",
                                "size",
                                "artifactType",
                                "annotations",
                            ]
                        ),
                        inner,
                        max_size=4,
                    )
                ),
                max_leaves=12,
            ).map(lambda doc: json.dumps(doc).encode()),
        )
    )
    return method, path, headers, params, body


@pytest.fixture(scope="module")
def fuzz_target(client) -> dict[str, str]:
    """Real content for random requests to hit: a repository with a blob, an image, an upload."""
    upload_blob(client, "fuzz/base", b"fuzz blob")
    upload_blob(client, "fuzz/base", b"fuzz blob", "sha512")
    push_image(client, "fuzz/base", "latest")
    location = start_upload(client, "fuzz/base")
    return {"upload_id": location.rstrip("/").rsplit("/", 1)[-1].split("?")[0]}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_requests())
def test_malformed_requests_never_cause_a_server_error(client, fuzz_target, case):
    method, path, headers, params, body = case
    path = path.replace("UPLOAD", fuzz_target["upload_id"])
    url = "/v2/" + quote(path, safe="/:@")
    r = client.request(
        method,
        url,
        params=params,
        headers=headers,
        content=body if method in ("PUT", "POST", "PATCH") else None,
    )
    assert r.status_code < 500, (method, url, params, headers, r.status_code, r.text)
    if r.status_code >= 400 and method != "HEAD":
        body = r.json()
        assert isinstance(body.get("errors"), list) and body["errors"], body
        assert {"code", "message", "detail"} <= set(body["errors"][0]), body
