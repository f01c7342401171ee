"""The access log on the real server: one line per request (the manifest fast path's too) with
client, user, method, path, status, bytes, duration and request id; `X-Request-Id` accepted when
sane and echoed; no secret in it; text by default, JSON lines with CYP_LOG_FORMAT=json (in
every `--workers` process); bytes that are not HTTP explained once per client at debug level."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.apiclient import call
from tests.apiclient import token_of as api_token
from tests.auth import ADMIN, fetch_token
from tests.images import push_image
from tests.support import (
    RegistryProcess,
    registry_process,
    wait_until,
)

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _server(pg_admin_url: str, nats_url: str, folder, **env: str) -> Iterator[RegistryProcess]:
    with registry_process(pg_admin_url, nats_url, folder / "data", **env) as proc:
        yield proc


@pytest.fixture(scope="module")
def text_server(pg_admin_url, nats_url, tmp_path_factory) -> Iterator[RegistryProcess]:
    yield from _server(
        pg_admin_url, nats_url, tmp_path_factory.mktemp("text"), CYP_LOG_LEVEL="debug"
    )


@pytest.fixture(scope="module")
def json_server(pg_admin_url, nats_url, tmp_path_factory) -> Iterator[RegistryProcess]:
    yield from _server(
        pg_admin_url,
        nats_url,
        tmp_path_factory.mktemp("json"),
        CYP_LOG_LEVEL="info",
        CYP_LOG_FORMAT="json",
        CYP_API_WORKERS="2",
    )


def _access_lines(reg: RegistryProcess) -> list[str]:
    return [line for line in reg.log.read_text().splitlines() if "cyp_registry.access:" in line]


def _line_for(reg: RegistryProcess, request_id: str) -> str:
    def found() -> str | None:
        lines = [line for line in _access_lines(reg) if line.endswith(f" id={request_id}")]
        return lines[0] if lines else None

    return wait_until(found, 10)


def test_a_line_per_request_with_its_user_and_request_id(text_server: RegistryProcess) -> None:
    reg = text_server
    with reg.client() as client:
        push_image(client, "logs/app", "v1")
    token = fetch_token(reg.url, *ADMIN, ["repository:logs/app:pull"])
    bearer = {"Authorization": f"Bearer {token}", "Accept": MANIFEST}

    # a manifest GET: the fast path's, below Litestar
    got = httpx.get(
        f"{reg.url}/v2/logs/app/manifests/v1", headers={**bearer, "X-Request-Id": "trace-42"}
    )
    assert got.status_code == 200 and got.headers["x-request-id"] == "trace-42"
    line = _line_for(reg, "trace-42")
    assert re.search(
        rf' INFO cyp_registry\.access: 127\.0\.0\.1 admin "GET /v2/logs/app/manifests/v1" 200'
        rf" {len(got.content)} \d+\.\dms id=trace-42$",
        line,
    ), line

    # a blob HEAD (the blob fast path's; no body)
    digest = got.headers["docker-content-digest"]
    head = httpx.head(
        f"{reg.url}/v2/logs/app/blobs/{digest}", headers={**bearer, "X-Request-Id": "h-1"}
    )
    assert head.headers["x-request-id"] == "h-1"
    assert '"HEAD /v2/logs/app/blobs/' in _line_for(reg, "h-1")

    # no token: the 401 challenge, nobody known; an insane request id is replaced
    bad_id = "x" * 129
    anonymous = httpx.get(f"{reg.url}/v2/logs/app/tags/list", headers={"X-Request-Id": bad_id})
    assert anonymous.status_code == 401
    fresh = anonymous.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", fresh), fresh
    assert ' - "GET /v2/logs/app/tags/list" 401 ' in _line_for(reg, fresh)
    for odd in ("two words", "semi;colon", ""):
        echoed = httpx.get(f"{reg.url}/health", headers={"X-Request-Id": odd})
        assert re.fullmatch(r"[0-9a-f]{16}", echoed.headers["x-request-id"]), odd

    # an /api session's user
    session = api_token(reg.url, *ADMIN)
    users = call(reg.url, "GET", "/api/users", session, headers={"X-Request-Id": "api-7"})
    assert users.status_code == 200
    assert ' admin "GET /api/users" 200 ' in _line_for(reg, "api-7")


def test_no_secret_in_the_log(text_server: RegistryProcess) -> None:
    reg = text_server
    answer = httpx.get(
        f"{reg.url}/token",
        params={
            "service": "cyp-registry",
            "scope": "repository:logs/app:pull",
            "password": "hunter2-x",
        },
        auth=ADMIN,
        headers={"X-Request-Id": "tok-1"},
    )
    assert answer.status_code == 200
    issued = answer.json()["token"]
    line = _line_for(reg, "tok-1")
    assert "password=***" in line and "service=cyp-registry" in line, line
    session = api_token(reg.url, *ADMIN)
    call(reg.url, "GET", "/api/users", session, headers={"X-Request-Id": "tok-2"})
    _line_for(reg, "tok-2")
    log = reg.log.read_text()
    for secret in ("hunter2-x", ADMIN[1], issued, session, "Basic ", "Bearer "):
        assert secret not in log, secret


def test_bytes_that_are_not_http_are_explained_once(text_server: RegistryProcess) -> None:
    reg = text_server
    client_hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64
    for _ in range(3):  # docker tries TLS first on every pull
        with socket.create_connection(("127.0.0.1", reg.port), timeout=10) as sock:
            sock.sendall(client_hello)
            assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
    explained = wait_until(
        lambda: [line for line in reg.log.read_text().splitlines() if "a TLS handshake" in line],
        10,
    )
    assert len(explained) == 1, explained
    assert " DEBUG cyp_registry.http: a TLS handshake from 127.0.0.1 " in explained[0]
    assert "plain HTTP" in explained[0] and "TLS proxy" in explained[0]
    assert "Invalid HTTP request received" not in reg.log.read_text()


def test_json_lines_in_every_api_process(json_server: RegistryProcess) -> None:
    reg = json_server
    for n in range(6):
        assert httpx.get(f"{reg.url}/health", headers={"X-Request-Id": f"j-{n}"}).status_code == 200
    unauthorized = httpx.get(f"{reg.url}/v2/", headers={"X-Request-Id": "j-v2"})
    assert unauthorized.status_code == 401

    def records() -> list[dict]:
        lines = [line for line in reg.log.read_text().splitlines() if line.strip()]
        return [json.loads(line) for line in lines]  # every line is JSON

    found = wait_until(
        lambda: (
            [r for r in records() if r.get("request_id") in {f"j-{n}" for n in range(6)}]
            if sum(r.get("request_id") == "j-v2" for r in records())
            else None
        ),
        10,
    )
    assert len(found) == 6
    [v2] = [r for r in records() if r.get("request_id") == "j-v2"]
    assert v2["logger"] == "cyp_registry.access" and v2["level"] == "info"
    assert {k: v2[k] for k in ("client", "user", "method", "path", "query", "status")} == {
        "client": "127.0.0.1",
        "user": "-",
        "method": "GET",
        "path": "/v2/",
        "query": "",
        "status": 401,
    }
    assert v2["bytes"] == len(unauthorized.content) and v2["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", v2["time"])
    # uvicorn's own lines too, from both API processes
    started = [r for r in records() if r["message"].startswith("Started server process")]
    assert len(started) == 2 and all(r["logger"] == "uvicorn.error" for r in started), started
