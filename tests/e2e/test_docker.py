"""The stock docker CLI against the registry: build, tag, push (per tag and --all-tags), list
tags, save, remove, pull by tag and by digest, save again byte-identically (guide §3, §4, §5.3,
§6), and repository names with slashes."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import CREDS, DEST_CREDS

# docker logged in as admin to the module's registry (every /v2 request needs a token)
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("docker_admin")]

TAGS = ["latest", "1.0.0", "v1"]
DIGEST_LINE = re.compile(r"^(?P<tag>\S+): digest: (?P<digest>sha256:[0-9a-f]{64}) size: \d+$", re.M)


def _build(docker, folder: Path, name: str) -> str:
    """An image of three layers (one file each, fresh content) tagged `name`; its image id."""
    folder.mkdir()
    (folder / "app.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (folder / "VERSION").write_text(f"{uuid.uuid4()}\n")
    (folder / "config.txt").write_text("listen=8080\n" * 1000)
    (folder / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY app.bin /opt/app/app.bin\n"
        "COPY VERSION /opt/app/VERSION\n"
        "COPY config.txt /etc/app/config.txt\n"
        'LABEL org.opencontainers.image.title="cyp e2e"\n'
        'CMD ["/opt/app/app.bin"]\n'
    )
    built = f"cyp-e2e-build:{uuid.uuid4().hex}"
    docker.run("build", "-t", built, str(folder))
    # save + rmi + load: drops the builder's intermediate images, so that once the tags are
    # removed the daemon holds none of the layers and a pull must download every one
    archive = folder / "built.tar"
    docker.run("save", "-o", str(archive), built)
    docker.run("rmi", built)
    docker.run("load", "-i", str(archive))
    docker.run("tag", built, name)
    docker.run("rmi", built)
    return docker.run("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()


def _digests(output: str) -> dict[str, str]:
    return {m["tag"]: m["digest"] for m in DIGEST_LINE.finditer(output)}


def _remove(docker, *refs: str) -> None:
    docker.run("rmi", *refs)
    for ref in refs:
        assert docker.run("image", "inspect", ref, check=False).returncode != 0


@pytest.fixture(scope="module")
def pushed(docker, docker_admin, module_registry, tmp_path_factory):
    """myapp built, tagged three times and pushed tag by tag; the push outputs and ids."""
    repo = f"{module_registry.host}/myapp"
    image_id = _build(docker, tmp_path_factory.mktemp("ctx") / "myapp", f"{repo}:{TAGS[0]}")
    for tag in TAGS[1:]:
        docker.run("tag", f"{repo}:{TAGS[0]}", f"{repo}:{tag}")
    outputs = [docker.run("push", f"{repo}:{tag}").stdout for tag in TAGS]
    yield {"repo": repo, "id": image_id, "outputs": outputs}
    docker.run("rmi", "-f", image_id, check=False)


def test_push_each_tag_then_all_tags(docker, module_registry, pushed):
    repo, outputs = pushed["repo"], pushed["outputs"]
    first = outputs[0]
    assert f"The push refers to repository [{repo}]" in first
    assert len(re.findall(r"^[0-9a-f]{12}: Pushed$", first, re.M)) == 3, first
    digest = _digests(first)["latest"]
    for tag, output in zip(TAGS[1:], outputs[1:], strict=True):
        # the layers are there already; the same manifest under another tag
        assert "Pushed" not in output, output
        assert len(re.findall(r"^[0-9a-f]{12}: Layer already exists$", output, re.M)) == 3
        assert _digests(output) == {tag: digest}

    everything = docker.run("push", repo, "--all-tags").stdout
    assert _digests(everything) == dict.fromkeys(TAGS, digest), everything

    with module_registry.client() as client:
        r = client.get("/v2/myapp/tags/list")
        assert r.status_code == 200
        assert r.json() == {"name": "myapp", "tags": sorted(TAGS)}
        r = client.get(
            "/v2/myapp/manifests/latest",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
    assert r.status_code == 200
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["content-type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert len(r.json()["layers"]) == 3


def test_save_pull_by_tag_and_digest_is_byte_identical(docker, pushed, tmp_path):
    repo, image_id = pushed["repo"], pushed["id"]
    refs = [f"{repo}:{tag}" for tag in TAGS]
    digest = _digests(pushed["outputs"][0])["latest"]
    before = tmp_path / "before.tar"
    docker.run("save", "-o", str(before), *refs)

    # pull each tag back into an empty daemon
    _remove(docker, *refs)
    for ref in refs:
        out = docker.run("pull", ref).stdout
        assert f"Digest: {digest}" in out, out
        assert f"Status: Downloaded newer image for {ref}" in out, out
        if ref == refs[0]:
            assert len(re.findall(r"^[0-9a-f]{12}: Pull complete$", out, re.M)) == 3, out
    assert docker.run("image", "inspect", "--format", "{{.Id}}", refs[0]).stdout.strip() == image_id
    by_tag = tmp_path / "by-tag.tar"
    docker.run("save", "-o", str(by_tag), *refs)
    assert by_tag.read_bytes() == before.read_bytes()

    # and by digest
    _remove(docker, *refs)
    out = docker.run("pull", f"{repo}@{digest}").stdout
    assert f"Digest: {digest}" in out, out
    assert f"Status: Downloaded newer image for {repo}@{digest}" in out, out
    assert len(re.findall(r"^[0-9a-f]{12}: Pull complete$", out, re.M)) == 3, out
    inspected = docker.json("image", "inspect", f"{repo}@{digest}")[0]
    assert inspected["Id"] == image_id
    assert f"{repo}@{digest}" in inspected["RepoDigests"]
    for ref in refs:
        docker.run("tag", f"{repo}@{digest}", ref)
    by_digest = tmp_path / "by-digest.tar"
    docker.run("save", "-o", str(by_digest), *refs)
    assert by_digest.read_bytes() == before.read_bytes()


def test_repository_name_with_slashes(docker, module_registry, pushed, tmp_path):
    nested = f"{module_registry.host}/team/web/frontend"
    docker.run("tag", f"{pushed['repo']}:latest", f"{nested}:2.0")
    out = docker.run("push", f"{nested}:2.0").stdout
    # the layers come over from myapp by a cross-repository mount
    assert len(re.findall(r"^[0-9a-f]{12}: Mounted from myapp$", out, re.M)) == 3, out
    digest = _digests(out)["2.0"]
    assert digest == _digests(pushed["outputs"][0])["latest"]

    with module_registry.client() as client:
        r = client.get("/v2/team/web/frontend/tags/list")
        catalog = client.get("/v2/_catalog").json()["repositories"]
    assert r.json() == {"name": "team/web/frontend", "tags": ["2.0"]}
    assert {"myapp", "team/web/frontend"} <= set(catalog)

    _remove(docker, f"{nested}:2.0")
    out = docker.run("pull", f"{nested}:2.0").stdout
    assert f"Digest: {digest}" in out
    inspected = docker.json("image", "inspect", f"{nested}:2.0")[0]
    assert inspected["Id"] == pushed["id"]
    assert f"{nested}@{digest}" in inspected["RepoDigests"]


def test_pull_of_unknown_tag_or_repository_fails_cleanly(docker, module_registry, pushed):
    for ref in (f"{pushed['repo']}:no-such-tag", f"{module_registry.host}/no/such/repo:latest"):
        result = docker.run("pull", ref, check=False)
        assert result.returncode != 0
        assert "not found" in result.stderr or "unknown" in result.stderr, result.stderr
        assert "500" not in result.stderr and "Internal Server Error" not in result.stderr


def test_large_layer_push_and_pull(docker, module_registry, tmp_path):
    """A 48 MiB incompressible layer streams up (chunked PATCH) and down intact (guide Q2)."""
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "blob.bin").write_bytes(os.urandom(48 * 1024 * 1024))
    (folder / "Dockerfile").write_text("FROM scratch\nCOPY blob.bin /blob.bin\n")
    ref = f"{module_registry.host}/big/layer:1"
    built = f"cyp-e2e-big:{uuid.uuid4().hex}"
    docker.run("build", "-t", built, str(folder))
    image_id = docker.run("image", "inspect", "--format", "{{.Id}}", built).stdout.strip()
    docker.run("tag", built, ref)
    out = docker.run("push", ref).stdout
    assert re.search(r"^[0-9a-f]{12}: Pushed$", out, re.M), out
    digest = _digests(out)["1"]

    with module_registry.client() as client:
        manifest = client.get(
            f"/v2/big/layer/manifests/{digest}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        ).json()
        (layer,) = manifest["layers"]
        r = client.head(f"/v2/big/layer/blobs/{layer['digest']}")
    assert layer["size"] > 48 * 1024 * 1024
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == layer["size"]

    docker.run("rmi", built, ref)  # deletes the build's intermediate images with it
    out = docker.run("pull", ref).stdout
    assert f"Digest: {digest}" in out and "Pull complete" in out, out
    assert docker.run("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == image_id
    docker.run("rmi", ref)


def test_skopeo_copies_a_docker_save_archive(docker, skopeo, module_registry, pushed, tmp_path):
    """A `docker save` tarball (guide §6 backups) restored into the registry with skopeo."""
    archive = tmp_path / "backup.tar"
    docker.run("save", "-o", str(archive), f"{pushed['repo']}:latest")
    ref = f"{module_registry.host}/restored/myapp:latest"
    skopeo.run(
        "copy", "--dest-tls-verify=false", DEST_CREDS,
        f"docker-archive:{archive}:{pushed['repo']}:latest", f"docker://{ref}",
    )  # fmt: skip
    info = skopeo.json("inspect", "--tls-verify=false", CREDS, f"docker://{ref}")
    assert info["Labels"] == {"org.opencontainers.image.title": "cyp e2e"}
    docker.run("pull", ref)
    assert docker.run("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == pushed["id"]
    docker.run("rmi", ref)
