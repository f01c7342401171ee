"""Test plumbing: reach (or start) Postgres and NATS, make isolated databases and streams,
run the real `cyp-registry serve` in a child process."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import typing
import uuid
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.auth import ADMIN, TokenAuth

ROOT = Path(__file__).resolve().parent.parent


def reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
        return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid()}_{uuid.uuid4().hex[:10]}"


def create_database(admin_url: str) -> str:
    name = unique("cyp_t_")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(admin_url)
    params["dbname"] = name
    return make_conninfo(**params) if "host" in params else f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_database(admin_url: str, url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def as_url(conninfo: str) -> str:
    """A postgresql:// URL for a conninfo string (the CLI takes URLs)."""
    if conninfo.startswith("postgres"):
        return conninfo
    p = conninfo_to_dict(conninfo)
    host = p.get("host", "127.0.0.1")
    user = p.get("user", "postgres")
    if str(host).startswith("/"):
        return f"postgresql://{user}@/{p['dbname']}?host={host}"
    return f"postgresql://{user}@{host}:{p.get('port', 5432)}/{p['dbname']}"


class RegistryProcess:
    """`cyp-registry serve` as a child process on a free port, with its own database/stream."""

    def __init__(self, database_url: str, nats_url: str, data_dir: Path, **env: str | None) -> None:
        """`env` overrides the environment; a None value removes a variable (e.g.
        `CYP_ADMIN_PASSWORD=None`: the first start then makes a random admin password)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.stream = env.pop("stream", unique("CYPT_"))
        self.subject = env.pop("subject", unique("cyptest."))
        self.env = {
            **os.environ,
            "CYP_DATABASE_URL": as_url(database_url),
            "CYP_NATS_URL": nats_url,
            "CYP_NATS_STREAM": self.stream,
            "CYP_NATS_SUBJECT": self.subject,
            "CYP_LOG_LEVEL": "warning",
            "CYP_ADMIN_PASSWORD": ADMIN[1],
            # Many tests of one registry sign in wrongly from 127.0.0.1 on purpose: only the
            # throttle's own tests (tests/test_throttle.py) set a small limit.
            "CYP_LOGIN_MAX_FAILURES": "1000",
            # Pulls are recorded when the registry stops, not every 10 s: tests that compare
            # the log with the stream or the views while it runs see only their own events.
            # Only tests/test_pulls.py sets an interval.
            "CYP_PULL_FLUSH_SECONDS": "3600",
            **env,
        }
        self.env = {key: value for key, value in self.env.items() if value is not None}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"registry-{self.port}.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, auth: tuple[str, str] = ADMIN, **kw) -> httpx.Client:
        """An httpx.Client on this registry authenticating with Docker tokens as `auth`."""
        kw.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, auth=TokenAuth(*auth), **kw)

    def start(self, timeout: float = 60) -> RegistryProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cyp_registry.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                # 401: up, and asking for a token (every /v2 request needs one)
                if httpx.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401):
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"registry did not start: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_own_nats(folder: Path) -> tuple[str, subprocess.Popen[bytes]]:
    from cyp_registry.embedded import start_nats

    return start_nats(folder, port=free_port())


class OwnNats:
    """A private nats-server (JetStream on disk under `folder`) a test may stop and restart:
    restarted on the same port and store directory, it looks like an outage to its clients."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url, self.proc = start_own_nats(folder)
        self.port = int(self.url.rsplit(":", 1)[1])

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        from cyp_registry.embedded import stop_nats

        stop_nats(self.proc)

    def kill(self) -> None:
        """kill -9: JetStream gets no chance to flush or close anything."""
        if self.running:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, timeout: float = 10) -> None:
        """Start it again: same port (clients reconnect to the URL they know), same store."""
        from cyp_registry.embedded import nats_binary

        assert not self.running, "stop it first"
        cmd = [nats_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd"]
        self.proc = subprocess.Popen(
            [*cmd, str(self.folder)],
            stdout=open(self.folder / "nats.log", "ab"),  # noqa: SIM115 - the child keeps it
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited; see {self.folder}/nats.log")
            if reachable("127.0.0.1", self.port):
                return
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"nats-server did not come back on port {self.port}")


class OwnPostgres:
    """A private Postgres (the embedded one's binaries, its own data folder) a test may stop
    and start again: the same socket and data, so to its clients it is an outage. Never the
    machine's shared Postgres."""

    def __init__(self, folder: Path) -> None:
        from cyp_registry.embedded import start_postgres

        self.folder = folder.resolve()
        self.url, self.handle = start_postgres(self.folder)
        self.socket_dir = conninfo_to_dict(self.url)["host"]

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        user = "pgserver" if os.geteuid() == 0 else None  # as the embedded one runs it
        pg_ctl(["-w", *args], pgdata=self.folder, user=user, timeout=30)

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: open sessions end with AdminShutdown, new ones are refused."""
        self._pg_ctl("-m", "fast", "stop")

    def restart(self) -> None:
        log = str(self.handle.log_file)
        self._pg_ctl("-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start")

    def close(self) -> None:
        if (self.folder / "postmaster.pid").exists():
            self.stop()
        from cyp_registry.embedded import stop_postgres

        stop_postgres(self.handle)


def delete_stream(nats_url: str, stream: str) -> None:
    """Remove a test's JetStream stream so the shared NATS does not collect them."""

    import nats

    async def run() -> None:
        with contextlib.suppress(Exception):
            nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=0)
            try:
                await nc.jetstream().delete_stream(stream)
            finally:
                await nc.close()

    run_coroutine(run())


def run_coroutine(coroutine: typing.Any) -> typing.Any:
    """asyncio.run, also where a loop already runs in this thread (Playwright's sync API
    keeps one running for the browser tests): then in a thread of its own."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def wait_until(check, timeout: float = 30, interval: float = 0.1):
    """Poll `check` until it returns something truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError("timed out")


@contextlib.contextmanager
def registry_process(admin_url: str, nats_url: str, data_dir: Path, **env: str):
    """A started registry on a database and stream of its own, removed afterwards."""
    url = create_database(admin_url)
    proc = RegistryProcess(url, nats_url, data_dir, **env)
    try:
        yield proc.start()
    finally:
        proc.stop()
        delete_stream(nats_url, proc.stream)
        drop_database(admin_url, url)


@contextlib.contextmanager
def registry_app(database_url: str, pool_size: int, max_overflow: int):
    """The Registry application on a migrated database, with a connection pool of its own
    (closed on exit)."""
    from cyp_registry.wiring import eventsourcing_env
    from domain.registry import Registry
    from migrations import migrate

    migrate(database_url)
    env = eventsourcing_env(database_url)
    env.update(POSTGRES_POOL_SIZE=str(pool_size), POSTGRES_MAX_OVERFLOW=str(max_overflow))
    registry = Registry(env=env)
    try:
        yield registry
    finally:
        registry.close()
