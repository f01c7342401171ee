"""skopeo against the registry: copy from a hand-written OCI layout, inspect, list-tags,
delete, copy between two repositories of the registry and back out to an OCI layout."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import CREDS, DEST_CREDS, SRC_CREDS
from tests.e2e.layout import OCI_MANIFEST, Layout, read_blobs, ref_descriptor, sha256

pytestmark = pytest.mark.e2e

# every /v2 request needs a token: skopeo gets the admin's credentials with each TLS option
INSECURE_DEST = ("--dest-tls-verify=false", DEST_CREDS)
INSECURE_SRC = ("--src-tls-verify=false", SRC_CREDS)
INSECURE = ("--tls-verify=false", CREDS)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An OCI layout with two images (`v1`: two layers, `v2`: shares the base layer)."""
    root = tmp_path_factory.mktemp("oci-source")
    layout = Layout(root)
    base = {"usr/share/base.txt": b"base layer\n" * 100}
    v1 = layout.image([base, {"opt/tool/bin": os.urandom(256 * 1024)}], labels={"version": "1"})
    v2 = layout.image([base, {"opt/tool/bin": os.urandom(64 * 1024)}], labels={"version": "2"})
    layout.publish(v1=v1, v2=v2)
    return layout


def _copy(skopeo, *args: str) -> str:
    return skopeo.run("copy", "--preserve-digests", *args).stdout


def test_copy_inspect_list_tags_delete(skopeo, module_registry, source):
    repo = f"docker://{module_registry.host}/tools/skopeo-app"
    v1, v2 = ref_descriptor(source.root, "v1"), ref_descriptor(source.root, "v2")
    out = _copy(skopeo, *INSECURE_DEST, f"oci:{source.root}:v1", f"{repo}:v1")
    assert "Writing manifest to image destination" in out, out
    _copy(skopeo, *INSECURE_DEST, f"oci:{source.root}:v2", f"{repo}:v2")
    _copy(skopeo, *INSECURE_DEST, f"oci:{source.root}:v1", f"{repo}:stable")

    # the manifest went over unchanged, under its digest
    with module_registry.client() as client:
        r = client.get("/v2/tools/skopeo-app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200
    assert r.headers["docker-content-digest"] == v1["digest"]
    assert r.content == source.blobs[v1["digest"]]

    info = skopeo.json("inspect", *INSECURE, f"{repo}:v1")
    manifest = json.loads(source.blobs[v1["digest"]])
    assert info["Name"] == f"{module_registry.host}/tools/skopeo-app"
    assert info["Digest"] == v1["digest"]
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Labels"] == {"version": "1"}
    assert info["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    assert sorted(info["RepoTags"]) == ["stable", "v1", "v2"]
    raw = skopeo.run("inspect", *INSECURE, "--raw", f"{repo}:v1").stdout.encode()
    assert raw == source.blobs[v1["digest"]]
    config = skopeo.run("inspect", *INSECURE, "--config", "--raw", f"{repo}:v1").stdout.encode()
    assert config == source.blobs[manifest["config"]["digest"]]

    tags = skopeo.json("list-tags", *INSECURE, repo)
    assert tags == {
        "Repository": f"{module_registry.host}/tools/skopeo-app",
        "Tags": ["stable", "v1", "v2"],
    }

    # delete v2: skopeo resolves the tag and deletes the manifest by digest
    skopeo.run("delete", *INSECURE, f"{repo}:v2")
    tags = skopeo.json("list-tags", *INSECURE, repo)
    assert tags["Tags"] == ["stable", "v1"]
    gone = skopeo.run("inspect", *INSECURE, f"{repo}:v2", check=False)
    assert gone.returncode != 0
    assert "manifest unknown" in gone.stderr.lower(), gone.stderr
    base = "/v2/tools/skopeo-app/manifests"
    with module_registry.client() as client:
        assert client.head(f"{base}/{v2['digest']}").status_code == 404
        assert client.head(f"{base}/v1").status_code == 200
    # the other image (sharing the base layer) is intact
    assert skopeo.json("inspect", *INSECURE, f"{repo}:stable")["Digest"] == v1["digest"]


def test_copy_between_repositories_and_back_out(skopeo, module_registry, source, tmp_path):
    host = module_registry.host
    first, second = f"docker://{host}/copy/origin", f"docker://{host}/copy/mirror/deep"
    v1 = ref_descriptor(source.root, "v1")
    _copy(skopeo, *INSECURE_DEST, f"oci:{source.root}:v1", f"{first}:1.0")
    _copy(skopeo, *INSECURE_SRC, *INSECURE_DEST, f"{first}:1.0", f"{second}:copied")
    assert skopeo.json("inspect", *INSECURE, f"{second}:copied")["Digest"] == v1["digest"]
    assert skopeo.json("list-tags", *INSECURE, second)["Tags"] == ["copied"]
    with module_registry.client() as client:
        catalog = client.get("/v2/_catalog").json()["repositories"]
    assert {"copy/origin", "copy/mirror/deep"} <= set(catalog)

    out_dir = tmp_path / "out"
    _copy(skopeo, *INSECURE_SRC, f"{second}:copied", f"oci:{out_dir}:copied")
    assert ref_descriptor(out_dir, "copied")["digest"] == v1["digest"]
    pulled = read_blobs(out_dir)
    manifest = json.loads(source.blobs[v1["digest"]])
    wanted = [
        v1["digest"],
        manifest["config"]["digest"],
        *(x["digest"] for x in manifest["layers"]),
    ]
    assert sorted(pulled) == sorted(wanted)
    for digest, data in pulled.items():
        assert sha256(data) == digest
        assert data == source.blobs[digest]
