"""A multi-arch image (an OCI index of linux/amd64 and linux/arm64) pushed with
`skopeo copy --all` from a hand-written OCI layout, then pulled back by skopeo and docker."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import CREDS, DEST_CREDS, SRC_CREDS
from tests.e2e.layout import OCI_INDEX, OCI_MANIFEST, Layout, read_blobs, ref_descriptor, sha256

pytestmark = pytest.mark.e2e

INSECURE = ("--tls-verify=false", CREDS)
ARCHES = ("amd64", "arm64")


@pytest.fixture(scope="module")
def multiarch(module_registry, skopeo, tmp_path_factory):
    """The layout, its index and per-arch manifest descriptors; pushed as multi/app:1.0."""
    layout = Layout(tmp_path_factory.mktemp("oci-multi"))
    shared = {"etc/app/shared.conf": b"shared across platforms\n" * 50}
    platforms = {
        arch: layout.image(
            [shared, {f"opt/app/{arch}.bin": os.urandom(128 * 1024)}],
            arch=arch,
            labels={"arch": arch},
        )
        for arch in ARCHES
    }
    index = layout.index(list(platforms.values()))
    layout.publish(multi=index)
    dest = f"docker://{module_registry.host}/multi/app:1.0"
    out = skopeo.run(
        "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", DEST_CREDS,
        f"oci:{layout.root}:multi", dest,
    ).stdout  # fmt: skip
    assert "Copying 2 of 2 images in list" in out, out
    return {"layout": layout, "index": index, "platforms": platforms}


def test_index_and_platform_manifests_served(module_registry, multiarch, skopeo):
    layout, index = multiarch["layout"], multiarch["index"]
    base = "/v2/multi/app/manifests"
    accept = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
    client = module_registry.client()
    r = client.get(f"{base}/1.0", headers=accept)
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_INDEX
    assert r.headers["docker-content-digest"] == index["digest"]
    assert r.content == layout.blobs[index["digest"]]
    for arch, descriptor in multiarch["platforms"].items():
        r = client.get(f"{base}/{descriptor['digest']}", headers=accept)
        assert r.status_code == 200, arch
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.content == layout.blobs[descriptor["digest"]]

    repo = f"docker://{module_registry.host}/multi/app:1.0"
    raw = skopeo.run("inspect", *INSECURE, "--raw", repo).stdout.encode()
    assert raw == layout.blobs[index["digest"]]
    for arch, descriptor in multiarch["platforms"].items():
        info = skopeo.json("--override-arch", arch, "inspect", *INSECURE, repo)
        assert info["Architecture"] == arch
        assert info["Digest"] == index["digest"]  # skopeo names what the tag points at
        assert info["Labels"] == {"arch": arch}
        manifest = json.loads(layout.blobs[descriptor["digest"]])
        assert info["Layers"] == [layer["digest"] for layer in manifest["layers"]]


def test_pull_back_all_platforms(multiarch, module_registry, skopeo, tmp_path):
    layout, index = multiarch["layout"], multiarch["index"]
    out_dir = tmp_path / "pulled"
    skopeo.run(
        "copy", "--all", "--preserve-digests", "--src-tls-verify=false", SRC_CREDS,
        f"docker://{module_registry.host}/multi/app:1.0", f"oci:{out_dir}:multi",
    )  # fmt: skip
    assert ref_descriptor(out_dir, "multi")["digest"] == index["digest"]
    pulled = read_blobs(out_dir)
    assert sorted(pulled) == sorted(layout.blobs)
    for digest, data in pulled.items():
        assert sha256(data) == digest
        assert data == layout.blobs[digest]


def test_docker_pulls_each_platform(docker, docker_admin, multiarch, module_registry):
    ref = f"{module_registry.host}/multi/app:1.0"
    ids = []
    for arch, descriptor in multiarch["platforms"].items():
        out = docker.run("pull", "--platform", f"linux/{arch}", ref).stdout
        assert f"Digest: {multiarch['index']['digest']}" in out, out
        inspected = docker.json("image", "inspect", ref)[0]
        assert inspected["Architecture"] == arch
        config = json.loads(multiarch["layout"].blobs[descriptor["digest"]])["config"]
        assert inspected["Id"] == config["digest"]
        assert inspected["Config"]["Labels"] == {"arch": arch}
        ids.append(inspected["Id"])
    docker.run("rmi", "-f", *ids)
