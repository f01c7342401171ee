"""End-to-end fixtures: the real docker CLI against a docker daemon (the machine's own if one
answers, else a private `dockerd` started in a temp dir for the session), and skopeo.

Tests skip only when the client binaries are missing; a daemon that fails to start is an error.
A daemon that already answers (DOCKER_HOST or the default socket) must share this machine's
loopback: the registries under test listen on 127.0.0.1 (which docker treats as insecure, so
plain http). Needs (Debian/Ubuntu): `apt-get install docker.io skopeo`, and root for the
private dockerd (vfs storage, no iptables, no bridge: it runs no containers)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.auth import ADMIN

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without proxies (the registries under test are on loopback)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env.update(extra)
    return env


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


@dataclass
class Tool:
    """A command-line client with a fixed environment (and global options)."""

    binary: str
    env: dict[str, str]
    options: tuple[str, ...] = ()

    def run(
        self, *args: str, check: bool = True, timeout: float = 180, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *self.options, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{Path(self.binary).name} {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)


@contextlib.contextmanager
def _own_dockerd(dockerd: str, docker: Tool) -> Iterator[str]:
    """A private dockerd (vfs storage, no networking setup) in a short temp dir."""
    root = Path(tempfile.mkdtemp(prefix="cypd-", dir="/tmp"))  # unix sockets: ~100 chars
    host = f"unix://{root}/d.sock"
    log = root / "dockerd.log"
    command = [
        dockerd,
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "-H",
        host,
        "--data-root",
        str(root / "data"),
        "--exec-root",
        str(root / "x"),
        "--pidfile",
        str(root / "d.pid"),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=_clean_env(), start_new_session=True
        )
    try:
        docker.env["DOCKER_HOST"] = host
        deadline = time.monotonic() + 60
        while docker.run("info", check=False, timeout=15).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield host
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tool]:
    """The docker CLI talking to a running daemon (started here if none answers)."""
    binary = _which("docker")
    if binary is None:
        pytest.skip("the docker CLI is not installed (apt-get install docker.io)")
    config = tmp_path_factory.mktemp("docker-config")  # no credentials of the user's
    tool = Tool(binary, _clean_env(DOCKER_CONFIG=str(config), DOCKER_BUILDKIT="0"))
    probe = tool.run("info", check=False, timeout=15)
    if probe.returncode == 0:
        yield tool
        return
    tool.env.pop("DOCKER_HOST", None)
    dockerd = _which("dockerd")
    if dockerd is None:
        pytest.skip(
            "no docker daemon answers and dockerd is not installed (apt-get install docker.io)"
        )
    with _own_dockerd(dockerd, tool):
        yield tool


def _accept_anything(folder: Path) -> Path:
    """A containers trust policy that accepts any image (the tests push unsigned ones)."""
    policy = folder / "policy.json"
    policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
    return policy


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Tool:
    """skopeo with a permissive trust policy of its own and a private temp dir."""
    binary = _which("skopeo")
    if binary is None:
        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    folder = tmp_path_factory.mktemp("skopeo")
    policy = _accept_anything(folder)
    (folder / "tmp").mkdir()
    return Tool(
        binary,
        _clean_env(REGISTRY_AUTH_FILE=str(folder / "auth.json")),
        ("--policy", str(policy), "--tmpdir", str(folder / "tmp")),
    )


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Tool:
    """podman with private storage (vfs), run dir, auth file and trust policy."""
    binary = _which("podman")
    if binary is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    folder = tmp_path_factory.mktemp("podman")
    policy = _accept_anything(folder)
    options = (
        f"--root={folder / 'root'}",
        f"--runroot={folder / 'run'}",
        "--storage-driver=vfs",
        "--cgroup-manager=cgroupfs",
        "--events-backend=file",
    )
    env = _clean_env(
        REGISTRY_AUTH_FILE=str(folder / "auth.json"),
        CONTAINERS_POLICY=str(policy),
        TMPDIR=str(folder),
    )
    return Tool(binary, env, options)


# skopeo's credentials options for the registry's admin (every /v2 request needs a token)
CREDS = f"--creds={ADMIN[0]}:{ADMIN[1]}"
SRC_CREDS = f"--src-creds={ADMIN[0]}:{ADMIN[1]}"
DEST_CREDS = f"--dest-creds={ADMIN[0]}:{ADMIN[1]}"


def docker_login(docker: Tool, host: str, user: str, password: str, check: bool = True):
    return docker.run("login", host, "-u", user, "--password-stdin", input=password, check=check)


@pytest.fixture(scope="module")
def docker_admin(docker: Tool, module_registry) -> Iterator[Tool]:
    """The docker CLI logged in to the module's registry as admin (logged out afterwards)."""
    docker_login(docker, module_registry.host, *ADMIN)
    yield docker
    docker.run("logout", module_registry.host, check=False)
