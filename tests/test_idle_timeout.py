"""Stalled clients on a real server (CYP_IDLE_TIMEOUT of 1.5 s, raw sockets): a request whose
headers or body stop arriving gets 408 and its connection is closed; an upload that keeps
sending, slowly, for longer than the timeout in total still succeeds; an idle connection
between requests is closed by uvicorn's keep-alive timeout; the app's handler of a stalled
body ends (its access-log line says 408)."""

from __future__ import annotations

import hashlib
import socket
import time

import httpx
import pytest

from tests.auth import ADMIN, fetch_token
from tests.support import (
    RegistryProcess,
    registry_process,
    wait_until,
)

TIMEOUT = 1.5


@pytest.fixture(scope="module")
def server(pg_admin_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("idle") / "data"
    env = {"CYP_IDLE_TIMEOUT": str(TIMEOUT), "CYP_LOG_LEVEL": "info"}
    with registry_process(pg_admin_url, nats_url, data, **env) as proc:
        yield proc


def _connect(reg: RegistryProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", reg.port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_until_closed(sock: socket.socket, limit: float = 10) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and when it closed (monotonic)."""
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic()


def _read_one_answer(sock: socket.socket) -> bytes:
    """One whole answer (headers, then Content-Length bytes): they may come in several reads."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return data


def _token(reg: RegistryProcess, repo: str) -> str:
    token = fetch_token(reg.url, *ADMIN, [f"repository:{repo}:pull,push"])
    assert token is not None
    return token


def test_headers_that_stop_arriving_get_408_and_close(server: RegistryProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\nUser-Agent: sl")
        sent = time.monotonic()
        data, closed = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert b"connection: close" in data.lower()
    assert TIMEOUT * 0.9 <= closed - sent < TIMEOUT + 3


def test_a_body_that_stops_arriving_gets_408_and_close(server: RegistryProcess) -> None:
    """Today's report: a POST that sends 10 of 100 declared bytes was held open forever."""
    with _connect(server) as sock:
        sock.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: registry\r\nContent-Type: application/json"
            b"\r\nContent-Length: 100\r\n\r\n" + b'{"usernam'
        )
        sent = time.monotonic()
        data, closed = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert data.count(b"HTTP/1.1") == 1  # the app's own answer (to a cut body) goes nowhere
    assert TIMEOUT * 0.9 <= closed - sent < TIMEOUT + 3
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_stalled_blob_patch_ends_its_handler(server: RegistryProcess) -> None:
    repo = "idle/stalled"
    token = _token(server, repo)
    auth = {"Authorization": f"Bearer {token}"}
    started = httpx.post(f"{server.url}/v2/{repo}/blobs/uploads/", headers=auth)
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    path = location if location.startswith("/") else httpx.URL(location).raw_path.decode()
    with _connect(server) as sock:
        sock.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: registry\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n".encode()
            + b"x" * 4096
        )
        data, _closed = _read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data
    # The handler that was reading the body returned: its request is in the access log.
    upload = path.split("?")[0].rsplit("/", 1)[1]
    wait_until(
        lambda: any(
            f"PATCH /v2/{repo}/blobs/uploads/{upload}" in line and '" 408 ' in line
            for line in server.log.read_text().splitlines()
        ),
        10,
    )
    # The session is still there (an upload cut off mid-PATCH is resumable).
    status = httpx.get(f"{server.url}{path.split('?')[0]}", headers=auth)
    assert status.status_code == 204, status.text


def test_a_slow_steady_upload_longer_than_the_timeout_succeeds(server: RegistryProcess) -> None:
    repo = "idle/slow"
    token = _token(server, repo)
    chunks = [bytes([i]) * 2048 for i in range(12)]
    body = b"".join(chunks)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    with _connect(server) as sock:
        sock.sendall(
            f"POST /v2/{repo}/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: registry\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        began = time.monotonic()
        for chunk in chunks:
            time.sleep(TIMEOUT / 3)
            sock.sendall(chunk)
        took = time.monotonic() - began
        data, _closed = _read_until_closed(sock)
    assert took > 2 * TIMEOUT  # longer than the timeout in total, never silent for as long
    assert data.startswith(b"HTTP/1.1 201 "), data[:500]
    pulled = httpx.get(
        f"{server.url}/v2/{repo}/blobs/{digest}", headers={"Authorization": f"Bearer {token}"}
    )
    assert pulled.status_code == 200 and pulled.content == body


def test_an_idle_connection_between_requests_is_closed(server: RegistryProcess) -> None:
    """uvicorn's keep-alive timeout (5 s) closes it, without an answer."""
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: registry\r\n\r\n")
        first = _read_one_answer(sock)
        assert first.startswith(b"HTTP/1.1 200 "), first
        answered = time.monotonic()
        rest, closed = _read_until_closed(sock, 15)
    assert rest == b""
    assert closed - answered < 8


def test_a_connection_that_sends_nothing_is_closed(server: RegistryProcess) -> None:
    with _connect(server) as sock:
        opened = time.monotonic()
        data, closed = _read_until_closed(sock)
    assert data == b""
    assert TIMEOUT * 0.9 <= closed - opened < TIMEOUT + 3
