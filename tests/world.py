"""A small registry world for the management API's tests, pushed over HTTP as clients do:

- admin: `team/web/frontend` (1.0, 1.1 and latest; 1.1 and latest are one manifest; 1.0
  has a config with a creation time and labels, a signature through the referrers API and
  a cosign-style `sha256-<hex>.sig` tag), `myapp:latest`, a multi-arch `team/multi:1.0`
  (two platforms), and `shared/tool:1` in the public namespace `shared`;
- alice (a user): `alice/app:1` in her personal namespace;
- bob (a user): `bob/secret:1` and `bob/secret:2` in his (private) personal namespace.

Layer `BASE` is shared by every image, so sharing saves bytes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.apiclient import call, token_of
from tests.auth import ADMIN
from tests.images import (
    OCI_MANIFEST,
    default_config,
    descriptor,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
)
from tests.support import RegistryProcess

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SIGNATURE_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
BASE = b"base layer shared by every image " * 8
CREATED = "2024-05-06T07:08:09Z"
LABELS = {"org.opencontainers.image.title": "frontend", "team": "web"}


@dataclass
class World:
    url: str
    admin: str  # /api tokens
    alice: str
    bob: str
    passwords: dict[str, str]
    digests: dict[str, str] = field(default_factory=dict)  # "repo:tag" -> digest
    sizes: dict[str, int] = field(default_factory=dict)  # "repo:tag" -> expected total size
    referrer: str = ""  # the signature of team/web/frontend:1.0 (referrers API, untagged)
    cosign: str = ""  # the same as cosign's tag scheme: digest of the `sha256-<hex>.sig` tag


def user(registry: RegistryProcess, admin_token: str, name: str, password: str) -> str:
    answer = call(
        registry.url,
        "POST",
        "/api/users",
        admin_token,
        json={"username": name, "password": password, "role": "user"},
    )
    assert answer.status_code == 201, answer.text
    return token_of(registry.url, name, password)


def _push(world: World, client: Any, repo: str, tag: str, layers: list[bytes], config=None):
    config = config if config is not None else default_config(layers)
    digest = push_image(client, repo, tag, layers, config)
    manifest = image_manifest(config, layers)
    world.digests[f"{repo}:{tag}"] = digest
    world.sizes[f"{repo}:{tag}"] = len(manifest) + len(config) + sum(map(len, layers))
    return digest, manifest


def _index(world: World, client: Any, repo: str, tag: str) -> None:
    children, total = [], 0
    for arch in ("amd64", "arm64"):
        layers = [BASE, f"{arch} layer".encode()]
        config = json.dumps(
            {"architecture": arch, "os": "linux", "created": f"2024-0{len(arch)}-01T00:00:00Z"}
        ).encode()
        digest, manifest = _push(world, client, repo, arch, layers, config)
        # untag the per-arch helper tags: only the index is tagged
        assert client.delete(f"/v2/{repo}/manifests/{arch}").status_code == 202
        children.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
        total += world.sizes.pop(f"{repo}:{arch}")
        world.digests.pop(f"{repo}:{arch}")
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, sort_keys=True
    ).encode()
    put_manifest(client, repo, tag, index, OCI_INDEX)
    world.digests[f"{repo}:{tag}"] = digest_of(index)
    world.sizes[f"{repo}:{tag}"] = len(index) + total


def _signature(world: World, client: Any, repo: str, subject_tag: str) -> None:
    """A signature through the referrers API (subject) and a cosign-style tag."""
    subject = world.digests[f"{repo}:{subject_tag}"]
    size = len(client.get(f"/v2/{repo}/manifests/{subject}").content)
    config, payload = b"{}", b"signature payload " + uuid.uuid4().bytes
    push_blob(client, repo, config)
    push_blob(client, repo, payload)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE_TYPE,
        "config": descriptor("application/vnd.oci.empty.v1+json", config),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
    }
    body = json.dumps(document, sort_keys=True).encode()
    put_manifest(client, repo, digest_of(body), body)
    world.referrer = digest_of(body)
    # cosign's tag scheme: sha256-<hex>.sig, an image of its own
    world.cosign, _ = _push(world, client, repo, subject.replace(":", "-") + ".sig", [payload])


def build(registry: RegistryProcess) -> World:
    url = registry.url
    admin = token_of(url, *ADMIN)
    suffix = uuid.uuid4().hex[:6]
    passwords = {"alice": f"alice-pw-{suffix}", "bob": f"bob-pw-{suffix}"}
    world = World(
        url,
        admin,
        user(registry, admin, "alice", passwords["alice"]),
        user(registry, admin, "bob", passwords["bob"]),
        passwords,
    )
    answer = call(url, "POST", "/api/namespaces", admin, json={"name": "shared", "public": True})
    assert answer.status_code == 201, answer.text
    frontend_config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": {"Labels": LABELS},
            "rootfs": {"type": "layers", "diff_ids": []},
        },
        sort_keys=True,
    ).encode()
    with registry.client() as client:
        _push(world, client, "team/web/frontend", "1.0", [BASE, b"frontend 1.0"], frontend_config)
        _push(world, client, "team/web/frontend", "1.1", [BASE, b"frontend 1.1"])
        _push(world, client, "team/web/frontend", "latest", [BASE, b"frontend 1.1"])
        _push(world, client, "myapp", "latest", [BASE, b"myapp"])
        _push(world, client, "shared/tool", "1", [BASE, b"tool"])
        _index(world, client, "team/multi", "1.0")
        _signature(world, client, "team/web/frontend", "1.0")
    with registry.client(("alice", passwords["alice"])) as client:
        _push(world, client, "alice/app", "1", [BASE, b"alice app"])
    with registry.client(("bob", passwords["bob"])) as client:
        _push(world, client, "bob/secret", "1", [BASE, b"bob secret 1"])
        _push(world, client, "bob/secret", "2", [BASE, b"bob secret 2"])
    return world
