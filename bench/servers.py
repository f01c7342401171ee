"""The two registries under test, each started fresh in its own temporary folder, and the
/proc readings (RSS, CPU) taken from them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.auth import ADMIN

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")
DISTRIBUTION_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
        return True
    return False


# -- /proc ----------------------------------------------------------------------------------
def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


def status_kib(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def tree_rss_kib(pid: int) -> int:
    return sum(status_kib(p, "VmRSS") for p in tree(pid))


def tree_hwm_kib(pid: int) -> int:
    """Sum of each process's own peak (an upper bound of the tree's peak)."""
    return sum(status_kib(p, "VmHWM") for p in tree(pid))


def role(pid: int) -> str:
    """What a process of our server's tree is: the serve process itself, an API worker
    (uvicorn's multiprocess children, started by multiprocessing's spawn) or multiprocessing's
    resource tracker."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    if "resource_tracker" in cmd:
        return "resource tracker"
    if "spawn_main" in cmd:
        return "API worker"
    return "main"


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, list[str]]:
    """A process's name and the fields of /proc/<pid>/stat after it ("", [] if gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "", []
    return raw[raw.index("(") + 1 : raw.rindex(")")], raw[raw.rindex(")") + 2 :].split()


def _cpu_of(pid: int) -> tuple[str, float]:
    comm, fields = _stat(pid)
    if not fields:
        return "", 0.0
    return comm, (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def tree_cpu(pid: int) -> float:
    return sum(_cpu_of(p)[1] for p in tree(pid))


def postgres_cpu(database: str) -> float:
    """CPU seconds so far of the Postgres backends serving `database`: the live ones, plus
    every backend the postmaster has reaped (an exited child's CPU moves into its parent's
    cutime/cstime). A difference of two readings is what Postgres spent on `database` in
    between, backends that came and went included (pools close overflow connections); the
    reaped ones are any database's, so this holds while the bench runs alone (the lock)."""
    total, parents = 0.0, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        comm, fields = _stat(int(entry.name))
        if comm != "postgres" or not fields:
            continue
        parents[int(entry.name)] = int(fields[1])
        with contextlib.suppress(OSError):
            if f" {database} " in (entry / "cmdline").read_bytes().decode(errors="replace"):
                total += (int(fields[11]) + int(fields[12])) / _TICK
    for pid, parent in parents.items():
        if parent not in parents:  # the postmaster (a postgres process not started by one)
            _, fields = _stat(pid)
            if fields:
                total += (int(fields[13]) + int(fields[14])) / _TICK  # cutime + cstime
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


def own_cpu() -> float:
    """CPU seconds of this process and its reaped children (client processes, wrk)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# -- servers --------------------------------------------------------------------------------
class Server:
    label = ""
    database = ""  # the Postgres database it uses, if any
    proc: subprocess.Popen[bytes] | None = None

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{self.label}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                # 401: up, and asking for a token (token auth)
                if httpx.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.label} did not start:\n{self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-3000:]
        return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop()


class Ours(Server):
    """`cyp-registry serve` on the machine's Postgres (a fresh database) and NATS (a fresh
    stream), as tests/support.py runs it."""

    label = "cyp"

    def __init__(self, workdir: Path, instrument: bool = False, workers: int = 1) -> None:
        super().__init__(workdir)
        self.instrument = instrument
        self.workers = workers
        self.stats = workdir / "timers.json"
        tag = uuid.uuid4().hex[:10]
        self.database = f"cyp_bench_{tag}"
        self.stream = f"CYPBENCH_{tag}"
        self.subject = f"cypbench.{tag}"
        self._db_made = False

    @property
    def database_url(self) -> str:
        return f"{ADMIN_URL.rsplit('/', 1)[0]}/{self.database}"

    def start(self) -> None:
        import psycopg

        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        self._db_made = True
        env = {
            **os.environ,
            "CYP_DATABASE_URL": self.database_url,
            "CYP_NATS_URL": NATS_URL,
            "CYP_NATS_STREAM": self.stream,
            "CYP_NATS_SUBJECT": self.subject,
            "CYP_LOG_LEVEL": "warning",
            "BENCH_STATS_FILE": str(self.stats),
            "CYP_ADMIN_PASSWORD": ADMIN[1],  # the bench's clients authenticate as admin
        }
        data = self.workdir / "cyp-data"
        data.mkdir(parents=True, exist_ok=True)
        module = "bench.instrumented" if self.instrument else "cyp_registry.cli"
        cmd = [sys.executable, "-m", module, "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--data-dir", str(data)]
        cmd += ["--workers", str(self.workers)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT
        )
        self._wait_ready()
        if self.workers > 1:  # /v2/ answers as soon as one API worker is up: wait for all
            self._wait_workers()

    def _wait_workers(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.label} exited:\n{self.log_tail()}")
            up = [p for p in tree(self.pid) if role(p) == "API worker"]
            if len(up) >= self.workers:
                # a worker that is still importing and connecting uses CPU: wait (bounded)
                # until the whole tree is idle
                settle = time.monotonic() + 30
                while time.monotonic() < settle:
                    c0 = tree_cpu(self.pid)
                    time.sleep(0.5)
                    if tree_cpu(self.pid) - c0 < 0.05:
                        break
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.label}: fewer than {self.workers} API workers started")

    def close(self) -> None:
        self.stop()
        if self._db_made:
            import psycopg

            with contextlib.suppress(Exception), psycopg.connect(ADMIN_URL, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        with contextlib.suppress(Exception):
            asyncio.run(_delete_stream(self.stream))


async def _delete_stream(stream: str) -> None:
    import nats

    async def quiet(_exc: Exception) -> None:
        pass

    nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0, error_cb=quiet)
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
"""


class Distribution(Server):
    """CNCF Distribution (Debian's docker-registry) with filesystem storage."""

    label = "distribution"

    @staticmethod
    def available() -> bool:
        return os.access(DISTRIBUTION_BIN, os.X_OK)

    @staticmethod
    def version() -> str:
        with contextlib.suppress(Exception):
            out = subprocess.run([DISTRIBUTION_BIN, "--version"], capture_output=True, text=True)
            return out.stdout.strip().split()[-1]
        return "?"

    def start(self) -> None:
        root = self.workdir / "distribution-data"
        root.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "distribution.yml"
        config.write_text(DISTRIBUTION_CONFIG.format(root=root, port=self.port))
        self.proc = subprocess.Popen(
            [DISTRIBUTION_BIN, "serve", str(config)],
            cwd=self.workdir,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
