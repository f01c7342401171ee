"""Docker token authentication with the stock docker CLI: no credentials, no push; a wrong
password, no login; a normal user (made with `cyp-registry user add`) logs in and pushes and
pulls in their own namespace, and nowhere else; the same with a personal access token and
with a robot as the password; an admin pushes the guide's own `myapp:latest` (namespace
`library`)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiclient import call, token_of
from tests.auth import ADMIN
from tests.e2e.conftest import docker_login

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).parent / "cyp-registry")
USER, PASSWORD = "alice", "alice-e2e-pw"
REFUSED = ("unauthorized", "denied", "authentication required", "no basic auth credentials")


def _refused(result: subprocess.CompletedProcess[str]) -> bool:
    text = (result.stdout + result.stderr).lower()
    return result.returncode != 0 and any(word in text for word in REFUSED)


def _add_user(registry, name: str, password: str) -> None:
    done = subprocess.run(
        [CLI, "user", "add", name, "--role", "user", "--password-stdin"],
        env={**os.environ, "CYP_DATABASE_URL": registry.env["CYP_DATABASE_URL"]},
        input=f"{password}\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def image(docker, tmp_path_factory) -> Iterator[str]:
    """A one-layer image with fresh content, under a local name; removed at the end."""
    folder = tmp_path_factory.mktemp("auth-ctx")
    (folder / "payload").write_bytes(os.urandom(64 * 1024))
    (folder / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    name = f"cyp-e2e-auth:{uuid.uuid4().hex}"
    docker.run("build", "-t", name, str(folder))
    yield name
    docker.run("rmi", "-f", name, check=False)


def _tags(registry, repo: str) -> int:
    with registry.client() as client:
        return client.get(f"/v2/{repo}/tags/list").status_code


def test_push_without_login_is_refused(docker, module_registry, image):
    host = module_registry.host
    docker.run("logout", host, check=False)
    ref = f"{host}/admin/app:anon"
    docker.run("tag", image, ref)
    try:
        result = docker.run("push", ref, check=False)
        assert _refused(result), result.stdout + result.stderr
    finally:
        docker.run("rmi", ref, check=False)
    assert _tags(module_registry, "admin/app") == 404  # nothing of it reached the registry


def test_login_with_a_wrong_password_fails(docker, module_registry):
    host = module_registry.host
    result = docker_login(docker, host, ADMIN[0], "not-the-password", check=False)
    assert result.returncode != 0, result.stdout
    assert "login succeeded" not in result.stdout.lower()
    result = docker_login(docker, host, "nobody", ADMIN[1], check=False)
    assert result.returncode != 0, result.stdout
    docker_login(docker, host, *ADMIN)  # the right password does log in
    docker.run("logout", host)


@pytest.fixture(scope="module")
def alice(module_registry) -> str:
    _add_user(module_registry, USER, PASSWORD)
    return USER


def _push_pull(docker, ref: str) -> None:
    out = docker.run("push", ref).stdout
    assert "digest: sha256:" in out, out
    docker.run("rmi", ref)
    out = docker.run("pull", ref).stdout
    assert f"Downloaded newer image for {ref}" in out, out


def test_user_pushes_and_pulls_only_in_their_namespace(docker, module_registry, image, alice):
    host = module_registry.host
    login = docker_login(docker, host, USER, PASSWORD)
    assert "Login Succeeded" in login.stdout, login.stdout
    own, others = f"{host}/{USER}/app:1", [f"{host}/admin/app:1", f"{host}/otherns/app:1"]
    try:
        docker.run("tag", image, own)
        out = docker.run("push", own).stdout
        assert "digest: sha256:" in out, out
        docker.run("rmi", own)
        out = docker.run("pull", own).stdout
        assert f"Downloaded newer image for {own}" in out, out

        for ref in others:
            docker.run("tag", image, ref)
            result = docker.run("push", ref, check=False)
            assert _refused(result), (ref, result.stdout + result.stderr)
        with module_registry.client() as client:  # as admin: none of them was created
            assert client.get("/v2/admin/app/tags/list").status_code == 404
            assert client.get("/v2/otherns/app/tags/list").status_code == 404
            assert client.get(f"/v2/{USER}/app/tags/list").json()["tags"] == ["1"]
    finally:
        docker.run("rmi", "-f", own, *others, check=False)
        docker.run("logout", host, check=False)


def _issue(registry, path: str, body: dict) -> dict:
    session = token_of(registry.url, USER, PASSWORD)
    answer = call(registry.url, "POST", path, session, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


@pytest.mark.parametrize("kind", ["personal access token", "robot"])
def test_login_with_a_token_or_a_robot(docker, module_registry, image, alice, kind):
    host = module_registry.host
    if kind == "robot":
        robot = _issue(
            module_registry,
            f"/api/namespaces/{USER}/robots",
            {"name": "ci", "actions": ["pull", "push"]},
        )
        user, secret, repo = robot["username"], robot["secret"], f"{USER}/robot-app"
    else:
        scopes = [{"namespace": USER, "actions": ["pull", "push"]}]
        pat = _issue(module_registry, "/api/tokens", {"name": "laptop", "scopes": scopes})
        user, secret, repo = USER, pat["secret"], f"{USER}/pat-app"
    login = docker_login(docker, host, user, secret)
    assert "Login Succeeded" in login.stdout, login.stdout
    own, other = f"{host}/{repo}:1", f"{host}/admin/{kind.replace(' ', '-')}:1"
    try:
        docker.run("tag", image, own)
        _push_pull(docker, own)
        docker.run("tag", image, other)
        result = docker.run("push", other, check=False)
        assert _refused(result), result.stdout + result.stderr
        docker.run("logout", host)
        # a wrong secret does not log in
        result = docker_login(docker, host, user, secret[:-1], check=False)
        assert result.returncode != 0, result.stdout
    finally:
        docker.run("rmi", "-f", own, other, check=False)
        docker.run("logout", host, check=False)


def test_the_guide_s_own_example_lands_in_library(docker, module_registry, image):
    """§3: `docker push localhost:8080/myapp:latest` as the admin; `myapp` is in `library`."""
    host = module_registry.host
    docker_login(docker, host, *ADMIN)
    ref = f"{host}/myapp:latest"
    try:
        docker.run("tag", image, ref)
        _push_pull(docker, ref)
        answer = call(
            module_registry.url,
            "GET",
            "/api/namespaces/library",
            token_of(module_registry.url, *ADMIN),
        )
        assert answer.status_code == 200, answer.text
    finally:
        docker.run("rmi", "-f", ref, check=False)
        docker.run("logout", host, check=False)
