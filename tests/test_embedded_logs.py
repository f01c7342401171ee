"""What an embedded first start shows on the console: our lines and uvicorn's, the generated
admin password framed so nobody misses it — and none of the embedded Postgres' and NATS'
chatter, which goes to <data>/logs/postgres.log and nats.log (where the password is not)."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import free_port
from tests.test_embedded import CLI, backing_processes, embedded_env

CREATED = re.compile(r"created user admin with password (\S+)")


@pytest.fixture
def first_start(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path, str]]:
    data, console, port = tmp_path / "data", tmp_path / "console.log", free_port()
    env = embedded_env()
    env.pop("CYP_ADMIN_PASSWORD")  # a generated one
    env["CYP_LOG_LEVEL"] = "info"
    proc = subprocess.Popen(
        [CLI, "serve", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=open(console, "ab"),  # noqa: SIM115 - the child keeps it
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, console.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError(console.read_text()[-3000:])
        yield proc, data, console, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for child in backing_processes(data):
            with contextlib.suppress(psutil.Error):
                child.kill()


def test_the_console_shows_the_password_framed_and_no_chatter(first_start) -> None:
    proc, data, console, url = first_start
    assert httpx.get(f"{url}/v2/", headers={"X-Request-Id": "first-1"}).status_code == 401
    deadline = time.monotonic() + 10
    while "id=first-1" not in console.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    shown = console.read_text()

    [password] = CREATED.findall(shown)
    lines = shown.splitlines()
    at = next(i for i, line in enumerate(lines) if CREATED.search(line))
    assert re.fullmatch(r"=+", lines[at - 1]) and re.fullmatch(r"=+", lines[at + 3]), shown
    assert ' - "GET /v2/" 401 ' in shown  # the access log is on the console

    # No chatter of the embedded services on the console, from start to stop.
    for chatter in ("pgserver", "initdb", "pg_ctl", "[INF]", "RuntimeDirWarning", "XDG_"):
        assert chatter not in shown, chatter
    logs = data / "logs"
    postgres, nats = (logs / "postgres.log").read_text(), (logs / "nats.log").read_text()
    assert "database system is ready to accept connections" in postgres
    assert "database system is shut down" in postgres  # the stop is narrated there too
    assert "Running commandline" in postgres  # pgserver's narration
    assert "Server is ready" in nats

    # The password is in no log file, and in no access-log line.
    for path in logs.iterdir():
        assert password not in path.read_text(errors="replace"), path
    assert not any(password in line for line in lines if "cyp_registry.access" in line)
