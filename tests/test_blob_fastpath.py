"""The blob fast path (api.v2.blob_fastpath) answers exactly as the /v2 handlers do: for a
blob HEAD, an upload's POST (plain and monolithic), PATCH and PUT — and each of their errors
(unknown blob or upload, digest invalid or mismatched, malformed or out-of-order or
mismatched Content-Range, a full repository) — the same status, bytes and headers, and the
same access-log line. Every request is sent twice, once as the fast path takes it and once
with `via=handler` added to its query, which sends it through Litestar to the handler; the
fast path's own planner (`plan`) is asked to confirm which is which. What it does not take
(no token, a token without the scope) gets the handler's 401 challenge."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from api.v2.blob_fastpath import plan
from tests.auth import ADMIN, fetch_token
from tests.support import RegistryProcess, registry_process, wait_until

CAP = 30  # upload sessions one repository may have open
_ids = itertools.count()
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def reg(pg_admin_url, nats_url, tmp_path_factory) -> Iterator[RegistryProcess]:
    with registry_process(
        pg_admin_url,
        nats_url,
        tmp_path_factory.mktemp("blobfast") / "data",
        CYP_LOG_LEVEL="info",
        CYP_LOG_FORMAT="json",
        CYP_MAX_UPLOADS_PER_REPOSITORY=str(CAP),
        CYP_MAX_UPLOADS_PER_USER="10000",
    ) as proc:
        yield proc


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _client(reg: RegistryProcess, *repos: str, actions: str = "pull,push,delete") -> httpx.Client:
    token = fetch_token(reg.url, *ADMIN, [f"repository:{repo}:{actions}" for repo in repos])
    return httpx.Client(base_url=reg.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _scope(request: httpx.Request) -> dict:
    raw_path, _, query = request.url.raw_path.partition(b"?")
    headers = [(k.lower(), v) for k, v in request.headers.raw]
    return {"method": request.method, "path": raw_path.decode(), "raw_path": raw_path,
            "query_string": query, "headers": headers}  # fmt: skip


def _access_line(reg: RegistryProcess, request_id: str) -> dict:
    def found() -> dict | None:
        for line in reg.log.read_text().splitlines():
            if f'"request_id": "{request_id}"' in line:
                return json.loads(line)
        return None

    return wait_until(found, 10)


def _normal(answer: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers, with the upload's id (which differs per upload) and the
    per-request ones (date, request id) set aside."""
    upload = answer.headers.get("docker-upload-uuid")
    headers = {
        k: v.replace(upload, "<upload>") if upload else v
        for k, v in answer.headers.items()
        if k not in ("date", "x-request-id")
    }
    return answer.status_code, answer.content, headers


def _both(
    reg: RegistryProcess,
    client: httpx.Client,
    method: str,
    target: Callable[[], str],
    query: str = "",
    *,
    fast: bool = True,
    **kwargs,
) -> httpx.Response:
    """Send the request as the fast path takes it and as only the handler does (`target`
    makes its path: a fresh upload for each, where it needs one); both answers and both
    access-log lines must be the same. Returns the fast path's answer."""
    answers, lines = [], []
    headers = kwargs.pop("headers", {})
    for via in ("", "via=handler"):
        q = "&".join(part for part in (query, via) if part)
        rid = f"bf-{next(_ids)}"
        path = target() + (f"?{q}" if q else "")
        answer = client.request(method, path, headers={**headers, "X-Request-Id": rid}, **kwargs)
        taken = plan(_scope(answer.request)) is not None
        assert taken == (fast and not via), (method, answer.request.url)
        answers.append(answer)
        line = _access_line(reg, rid)
        line["path"] = _UUID.sub("<upload>", line["path"])  # a fresh upload's each
        lines.append({k: v for k, v in line.items() if k not in ("time", "duration_ms",
                      "request_id", "query", "message")})  # fmt: skip
    assert _normal(answers[0]) == _normal(answers[1])
    assert lines[0] == lines[1]
    return answers[0]


def _upload(client: httpx.Client, repo: str) -> str:
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    return started.headers["location"]


def test_blob_heads(reg: RegistryProcess) -> None:
    data = b"a blob to HEAD"
    digest = _sha256(data)
    with _client(reg, "bf/head", "bf/elsewhere") as client:
        done = client.post("/v2/bf/head/blobs/uploads/", params={"digest": digest}, content=data)
        assert done.status_code == 201
        other = b"in another repository only"
        assert (
            client.post(
                "/v2/bf/elsewhere/blobs/uploads/", params={"digest": _sha256(other)}, content=other
            ).status_code
            == 201
        )
        for blob, status in (
            (digest, 200),
            (_sha256(b"never pushed"), 404),
            (_sha256(other), 404),  # linked elsewhere: unknown here
            ("sha256:not-hex", 400),
            ("md5:" + "0" * 32, 400),
        ):
            answer = _both(reg, client, "HEAD", lambda b=blob: f"/v2/bf/head/blobs/{b}")
            assert answer.status_code == status, (blob, answer.headers)
        assert answer.headers["content-type"] == "application/json"
        ok = client.head(f"/v2/bf/head/blobs/{digest}")
        assert ok.headers["content-length"] == str(len(data))
        assert ok.headers["docker-content-digest"] == digest


def test_upload_posts(reg: RegistryProcess) -> None:
    repo = "bf/post"
    data = b"monolithic POST body"
    with _client(reg, repo) as client:
        path = lambda: f"/v2/{repo}/blobs/uploads/"  # noqa: E731
        started = _both(reg, client, "POST", path)
        assert started.status_code == 202 and started.headers["range"] == "0-0"
        assert started.headers["location"].endswith(started.headers["docker-upload-uuid"])
        created = _both(reg, client, "POST", path, f"digest={_sha256(data)}", content=data)
        assert created.status_code == 201
        assert created.headers["location"] == f"/v2/{repo}/blobs/{_sha256(data)}"
        escaped = _sha256(data).replace(":", "%3A")
        assert (
            _both(reg, client, "POST", path, f"digest={escaped}", content=data).status_code == 201
        )
        sha512 = "sha512:" + hashlib.sha512(data).hexdigest()
        assert _both(reg, client, "POST", path, f"digest={sha512}", content=data).status_code == 201
        wrong = _both(reg, client, "POST", path, f"digest={_sha256(b'x')}", content=data)
        assert wrong.status_code == 400 and b"DIGEST_INVALID" in wrong.content
        malformed = _both(reg, client, "POST", path, "digest=sha256:zz", content=data)
        assert malformed.status_code == 400
        # a mount is the handler's (here: not found, so an ordinary upload)
        mount = f"mount={_sha256(b'nowhere')}&from=bf/none"
        assert _both(reg, client, "POST", path, mount, fast=False).status_code == 202
        # a blob pushed twice
        assert client.head(f"/v2/{repo}/blobs/{_sha256(data)}").status_code == 200


def test_a_full_repository(reg: RegistryProcess) -> None:
    repo = "bf/full"
    with _client(reg, repo) as client:
        for _ in range(CAP):
            _upload(client, repo)
        for query, body in (("", b""), (f"digest={_sha256(b'y')}", b"y")):
            full = _both(reg, client, "POST", lambda: f"/v2/{repo}/blobs/uploads/", query,
                         content=body)  # fmt: skip
            assert full.status_code == 429 and full.headers["retry-after"] == "10"


def test_patches(reg: RegistryProcess) -> None:
    repo = "bf/patch"
    with _client(reg, repo, "bf/patch-other") as client:
        fresh = lambda: _upload(client, repo)  # noqa: E731

        def with_ten() -> str:
            location = _upload(client, repo)
            assert client.patch(location, content=b"0123456789").status_code == 202
            return location

        cases = [
            (fresh, {}, b"first chunk", 202),
            (fresh, {}, b"", 202),
            (fresh, {"Content-Range": "0-4"}, b"01234", 202),
            (fresh, {"Content-Range": "bytes=0-4/5"}, b"01234", 202),
            (with_ten, {"Content-Range": "10-12"}, b"abc", 202),
            (with_ten, {}, b"more", 202),
            (with_ten, {"Content-Range": "0-2"}, b"abc", 416),  # out of order
            (fresh, {"Content-Range": "5-7"}, b"abc", 416),
            (fresh, {"Content-Range": "garbage"}, b"abc", 416),
            (fresh, {"Content-Range": "7-5"}, b"abc", 416),
            (fresh, {"Content-Range": "0-9"}, b"abc", 416),  # not what Content-Length says
            (lambda: f"/v2/{repo}/blobs/uploads/{uuid.uuid4()}", {}, b"abc", 404),
            (lambda: f"/v2/{repo}/blobs/uploads/not-an-upload", {}, b"abc", 404),
            # an upload of another repository is unknown here
            (lambda: _upload(client, "bf/patch-other").replace("-other", ""), {}, b"a", 404),
        ]
        for target, headers, body, status in cases:
            answer = _both(reg, client, "PATCH", target, headers=headers, content=body)
            assert answer.status_code == status, (headers, answer.text)
            if status == 202:
                assert answer.headers["range"].startswith("0-")


def test_puts(reg: RegistryProcess) -> None:
    repo = "bf/put"
    data = b"the whole blob in one PUT"
    digest = _sha256(data)
    with _client(reg, repo) as client:
        fresh = lambda: _upload(client, repo)  # noqa: E731

        def patched() -> str:
            location = _upload(client, repo)
            assert client.patch(location, content=data[:10]).status_code == 202
            return location

        cases = [
            (fresh, f"digest={digest}", {}, data, 201),
            (fresh, f"digest={digest}", {}, data, 201),  # again: the blob exists already
            (patched, f"digest={digest}", {}, data[10:], 201),
            (patched, f"digest={digest}", {"Content-Range": f"10-{len(data) - 1}"}, data[10:], 201),
            (patched, f"digest={digest}", {"Content-Range": "0-3"}, data[:4], 416),
            (patched, f"digest={digest}", {}, b"", 400),  # too short: digest mismatch
            (fresh, f"digest={_sha256(b'other')}", {}, data, 400),
            (fresh, "digest=sha256:zz", {}, data, 400),
            (fresh, "digest=nope", {}, data, 400),
            (lambda: f"/v2/{repo}/blobs/uploads/{uuid.uuid4()}", f"digest={digest}", {}, data, 404),
        ]
        for target, query, headers, body, status in cases:
            answer = _both(reg, client, "PUT", target, query, headers=headers, content=body)
            assert answer.status_code == status, (query, headers, answer.text)
            if status == 201:
                assert answer.headers["docker-content-digest"] == digest
        # no digest at all: the handler's
        missing = _both(reg, client, "PUT", fresh, "", fast=False, content=data)
        assert missing.status_code == 400
        assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200
        got = client.get(f"/v2/{repo}/blobs/{digest}")
        assert got.content == data


def test_what_it_does_not_take_reaches_the_handler(reg: RegistryProcess) -> None:
    repo = "bf/denied"
    data = b"denied"
    with _client(reg, repo) as owner:
        location = _upload(owner, repo)
    with (
        httpx.Client(base_url=reg.url, timeout=30) as anonymous,
        _client(reg, repo, actions="pull") as reader,
        _client(reg, "bf/someone-else") as stranger,
    ):
        for client, error in ((anonymous, None), (reader, "insufficient_scope"),
                              (stranger, "insufficient_scope")):  # fmt: skip
            requests = [
                ("POST", f"/v2/{repo}/blobs/uploads/", "", b""),
                ("POST", f"/v2/{repo}/blobs/uploads/", f"digest={_sha256(data)}", data),
                ("PATCH", location, "", data),
                ("PUT", location, f"digest={_sha256(data)}", data),
            ]
            if client is not reader:
                requests.append(("HEAD", f"/v2/{repo}/blobs/{_sha256(data)}", "", b""))
            for method, path, query, body in requests:
                answer = _both(reg, client, method, lambda p=path: p, query, content=body)
                assert answer.status_code == 401, (method, answer.text)
                challenge = answer.headers["www-authenticate"]
                assert challenge.startswith('Bearer realm="')
                assert (error is None) == ("error=" not in challenge)
    with _client(reg, repo) as owner:  # nothing of theirs reached the upload
        assert owner.get(location).headers["range"] == "0-0"
