"""podman authenticates unmodified: a user logs in with a personal access token, builds
`FROM scratch`, pushes to their namespace, pulls it back; after `podman logout` a pull is
refused (zero trust)."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.apiclient import call, token_of
from tests.auth import ADMIN

pytestmark = pytest.mark.e2e

USER, PASSWORD = "paula", "paula-e2e-password"


def test_podman_login_push_pull_logout(podman, module_registry, tmp_path) -> None:
    url, host = module_registry.url, module_registry.host
    admin = token_of(url, *ADMIN)
    body = {"username": USER, "password": PASSWORD, "role": "user"}
    assert call(url, "POST", "/api/users", admin, json=body).status_code == 201
    scopes = [{"namespace": USER, "actions": ["pull", "push"]}]
    issued = call(
        url,
        "POST",
        "/api/tokens",
        token_of(url, USER, PASSWORD),
        json={"name": "podman", "scopes": scopes},
    )
    assert issued.status_code == 201, issued.text
    secret = issued.json()["data"]["secret"]

    (tmp_path / "payload").write_bytes(os.urandom(32 * 1024))
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    ref = f"{host}/{USER}/podapp:{uuid.uuid4().hex[:8]}"
    podman.run("build", "-t", ref, str(tmp_path))
    try:
        login = podman.run(
            "login", "--tls-verify=false", "-u", USER, "--password-stdin", host, input=secret
        )
        assert "Login Succeeded" in login.stdout, login.stdout + login.stderr
        podman.run("push", "--tls-verify=false", ref)
        podman.run("rmi", ref)
        podman.run("pull", "--tls-verify=false", ref)
        refused = podman.run(
            "push", "--tls-verify=false", ref, f"{host}/admin/podapp:1", check=False
        )
        assert refused.returncode != 0
        podman.run("logout", host)
        podman.run("rmi", ref)
        anonymous = podman.run("pull", "--tls-verify=false", ref, check=False)
        assert anonymous.returncode != 0
        assert "unauthorized" in (anonymous.stdout + anonymous.stderr).lower()
    finally:
        podman.run("rmi", "-f", ref, check=False)
        podman.run("logout", "--all", check=False)
