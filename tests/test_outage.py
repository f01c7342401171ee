"""A Postgres outage on the real stack: the registry's own Postgres is stopped while clients
pull (manifests on the fast path, blobs), push, sign in and call /api. Every answer comes
within a few seconds, as 503 with `Retry-After` (the OCI error body on /v2, the envelope on
/api), nothing is logged as a traceback, and once Postgres is back the same requests succeed
again without restarting the registry."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.apiclient import token_of as api_token_of
from tests.auth import ADMIN
from tests.images import default_config, digest_of, image_manifest, push_image
from tests.support import RegistryProcess, delete_stream, wait_until

pytestmark = pytest.mark.timeout(180)

REPO = "outage/app"
BOUND = 5.0  # seconds: the "within a few seconds"


@dataclass
class Answer:
    kind: str
    started: float
    elapsed: float
    status: int
    retry_after: str | None
    body: bytes


def v2_token(url: str) -> str:
    answer = httpx.get(
        f"{url}/token",
        params={"service": "cyp-registry", "scope": f"repository:{REPO}:pull,push"},
        auth=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


class Load:
    """Clients of every kind, each in its own thread, until stopped; every answer is kept."""

    def __init__(self, url: str, layer: str, config: bytes, v2: str, api: str) -> None:
        self.url = url
        self.layer, self.config = layer, config
        self.v2 = {"Authorization": f"Bearer {v2}"}
        self.api = {"Authorization": f"Bearer {api}"}
        self.answers: list[Answer] = []
        self.failures: list[str] = []  # a request that got no answer at all
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pushes = 0

    def _requests(self, kind: str):
        """The next request (method, path, kwargs) of one client kind."""
        if kind == "manifest":  # a Bearer token that grants the pull: the fast path
            return "GET", f"/v2/{REPO}/manifests/latest", {"headers": self.v2}
        if kind == "manifest-head":
            return "HEAD", f"/v2/{REPO}/manifests/latest", {"headers": self.v2}
        if kind == "blob":
            return "GET", f"/v2/{REPO}/blobs/{self.layer}", {"headers": self.v2}
        if kind == "blob-push":  # a monolithic upload: the blob is linked by an event
            with self._lock:
                self._pushes += 1
                n = self._pushes
            body = f"pushed layer {os.getpid()} {n} {time.time()}".encode()
            return (
                "POST",
                f"/v2/{REPO}/blobs/uploads/",
                {
                    "params": {"digest": digest_of(body)},
                    "content": body,
                    "headers": {**self.v2, "Content-Type": "application/octet-stream"},
                },
            )
        if kind == "manifest-push":
            with self._lock:
                self._pushes += 1
                n = self._pushes
            manifest = image_manifest(self.config, [b"base layer"], {"n": str(n)})
            return (
                "PUT",
                f"/v2/{REPO}/manifests/t{n % 5}",
                {
                    "content": manifest,
                    "headers": {
                        **self.v2,
                        "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                    },
                },
            )
        if kind == "sign-in":
            return "GET", "/token", {"params": {"service": "cyp-registry"}, "auth": ADMIN}
        if kind == "api":
            return "GET", "/api/repositories", {"headers": self.api}
        if kind == "api-image":
            return "GET", f"/api/images/{REPO}/latest", {"headers": self.api}
        raise AssertionError(kind)

    KINDS = (
        "manifest",
        "manifest",
        "manifest",
        "manifest-head",
        "blob",
        "blob",
        "blob-push",
        "manifest-push",
        "sign-in",
        "api",
        "api-image",
    )

    def one(self, kind: str, client: httpx.Client) -> Answer | None:
        method, path, kw = self._requests(kind)
        started = time.monotonic()
        try:
            r = client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self.failures.append(f"{kind}: {exc!r} after {time.monotonic() - started:.1f}s")
            return None
        answer = Answer(
            kind,
            started,
            time.monotonic() - started,
            r.status_code,
            r.headers.get("retry-after"),
            r.content,
        )
        with self._lock:
            self.answers.append(answer)
        return answer

    def _client(self, kind: str) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                self.one(kind, client)

    def start(self) -> None:
        for kind in self.KINDS:
            thread = threading.Thread(target=self._client, args=(kind,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def since(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= moment]

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(60)


def succeeded(answer: Answer | None) -> bool:
    return answer is not None and 200 <= answer.status < 300


def assert_unavailable(answer: Answer) -> None:
    """503 with Retry-After and the body of its surface."""
    assert answer.status == 503, (answer.kind, answer.status, answer.body[:300])
    assert answer.retry_after and answer.retry_after.isdigit(), answer
    if answer.kind.startswith(("manifest", "blob")):
        if answer.kind != "manifest-head":  # a HEAD answer has no body
            errors = httpx.Response(200, content=answer.body).json()["errors"]
            assert errors[0]["code"] == "UNAVAILABLE", answer.body
    else:
        body = httpx.Response(200, content=answer.body).json()
        assert body["success"] is False and body["error"]["code"] == "UNAVAILABLE", body


def test_postgres_outage_answers_503_fast_and_recovers(own_postgres, nats_url, tmp_path):
    reg = RegistryProcess(own_postgres.url, nats_url, tmp_path / "data").start()
    try:
        client = reg.client()
        layers = [b"base layer"]
        push_image(client, REPO, "latest", layers=layers)
        config = default_config(layers)
        load = Load(
            reg.url, digest_of(layers[0]), config, v2_token(reg.url), api_token_of(reg.url, *ADMIN)
        )
        load.start()
        try:
            wait_until(lambda: {a.kind for a in load.answers if succeeded(a)} >= set(Load.KINDS))
            assert {a.status for a in load.answers} <= {200, 201, 202}, load.answers[-5:]

            own_postgres.stop()
            stopped = time.monotonic()
            # Enough answers of every kind from after the stop (or the bound is broken).
            wait_until(
                lambda: all(
                    sum(1 for a in load.since(stopped) if a.kind == kind) >= 20
                    for kind in Load.KINDS
                ),
                timeout=60,
            )
            down = load.since(stopped)
            during = [a for a in load.answers if a.started < stopped <= a.started + a.elapsed]

            own_postgres.restart()
            restarted = time.monotonic()
            # Recovery needs no restart of the registry: each kind succeeds again.
            wait_until(
                lambda: {a.kind for a in load.since(restarted) if succeeded(a)} >= set(Load.KINDS),
                timeout=60,
            )
        finally:
            load.finish()

        assert not load.failures, load.failures[:5]
        slow = [a for a in load.answers if a.elapsed >= BOUND]
        assert not slow, [(a.kind, a.status, round(a.elapsed, 1)) for a in slow[:10]]
        for answer in down:
            assert_unavailable(answer)
        for answer in during:  # in flight when Postgres stopped: done, or 503
            if not succeeded(answer):
                assert_unavailable(answer)
    finally:
        reg.stop()
        delete_stream(nats_url, reg.stream)
    log = reg.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 500 :][:3000]
