"""The relay from the event store to JetStream, on the real Postgres and a real nats-server:
every stored event reaches the stream exactly once and in log order — through NATS outages,
relay crashes and restarts from an older checkpoint, events larger than a NATS message and
messages forged by anyone who can publish on the stream's subjects; /health says when the
relay lags."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time

import httpx
import msgspec
import nats
import psycopg
import pytest
from nats.js.api import StreamConfig

from cyp_registry.wiring import eventsourcing_env
from domain.registry import Registry
from tests.apiclient import call, token_of
from tests.auth import ADMIN
from tests.auth import client as authed_client
from tests.consistency import (
    assert_stream_matches_log,
    event_log,
    head_position,
    stream_messages,
    wait_relayed,
)
from tests.images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    default_config,
    descriptor,
    digest_of,
    push_image,
    put_manifest,
)
from workers.relay import Relay

pytestmark = pytest.mark.timeout(180)


class Pusher(threading.Thread):
    """Pushes small images one after another until stopped; records how each went."""

    def __init__(self, url: str, repo: str) -> None:
        super().__init__(daemon=True)
        self.url, self.repo = url, repo
        self.stopping = threading.Event()
        self.pushed: list[tuple[float, float]] = []  # (started, took) of successful pushes
        self.failures: list[str] = []

    def run(self) -> None:
        with authed_client(self.url) as client:
            i = 0
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    push_image(client, self.repo, f"v{i}", layers=[f"{self.repo} {i}".encode()])
                except (AssertionError, httpx.HTTPError) as exc:
                    self.failures.append(repr(exc))
                else:
                    self.pushed.append((started, time.monotonic() - started))
                i += 1
                time.sleep(0.02)

    def during(self, start: float, end: float) -> int:
        return sum(1 for at, _ in self.pushed if start <= at < end)

    def finish(self) -> None:
        self.stopping.set()
        self.join(30)


def test_nats_outages_delay_but_never_lose_or_reorder(own_nats, registry_factory, database_url):
    reg = registry_factory(nats=own_nats.url).start()
    with reg.client() as client:
        push_image(client, "relay/app", "first")
    wait_relayed(own_nats.url, reg.stream, database_url)

    pusher = Pusher(reg.url, "relay/app")
    pusher.start()
    outages = []
    # A clean shutdown outlasting the relay's publish timeout (5 s: a short outage is hidden
    # by the client's reconnect buffer), then a short kill -9.
    for stop, seconds in ((own_nats.stop, 7.0), (own_nats.kill, 2.0)):
        time.sleep(0.7)
        down = time.monotonic()
        stop()
        time.sleep(seconds)
        own_nats.restart()
        outages.append((down, time.monotonic()))
    time.sleep(0.7)
    pusher.finish()

    assert not pusher.failures, pusher.failures[:3]
    for down, up in outages:
        assert pusher.during(down, up) >= 3, "pushes stalled while NATS was down"
    slowest = max(took for _, took in pusher.pushed)
    assert slowest < 5, f"a push waited {slowest:.1f}s for NATS"

    wait_relayed(own_nats.url, reg.stream, database_url, timeout=60)
    messages = assert_stream_matches_log(own_nats.url, reg.stream, database_url)
    assert len(messages) >= 4 * len(pusher.pushed)  # a push: repo/blob links, manifest, tag
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT position FROM relay_positions WHERE name = %s", (reg.stream,)
        ).fetchone()[0]
    assert stored == messages[-1].position


def _publish_everything_again(registry: Registry, database_url: str, nats_url: str, reg) -> None:
    """A relay that starts over from position 0, as if its checkpoint had been lost."""

    async def main() -> None:
        relay = Relay(registry, database_url, nats_url, reg.stream, reg.subject, batch_size=7)
        await relay.connect()
        try:
            js = relay.nc.jetstream()
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
                relay.position = 0
                while await relay.publish_pending(js, conn):
                    pass
        finally:
            await relay.nc.close()

    asyncio.run(main())


def test_relay_restarted_from_an_older_checkpoint_publishes_once(
    registry_factory, database_url, nats_url
):
    reg = registry_factory().start()
    with reg.client() as client:
        for i in range(5):
            push_image(client, "relay/old", f"a{i}", layers=[f"a {i}".encode()])
    wait_relayed(nats_url, reg.stream, database_url)

    # Crash, and come back with the relay's checkpoint far behind what it published.
    reg.kill()
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE relay_positions SET position = 0 WHERE name = %s", (reg.stream,))
    reg.start()
    with reg.client() as client:
        for i in range(5):
            push_image(client, "relay/old", f"b{i}", layers=[f"b {i}".encode()])
    wait_relayed(nats_url, reg.stream, database_url)
    before = assert_stream_matches_log(nats_url, reg.stream, database_url)

    # A relay that really publishes everything again from position 0 (beside the running
    # one): JetStream drops every resend by its Nats-Msg-Id; the stream does not change.
    registry = Registry(env=eventsourcing_env(database_url))
    try:
        _publish_everything_again(registry, database_url, nats_url, reg)
    finally:
        registry.close()
    assert stream_messages(nats_url, reg.stream) == before

    # The running relay carries on after that, still once each and in order.
    with reg.client() as client:
        push_image(client, "relay/old", "c")
    wait_relayed(nats_url, reg.stream, database_url)
    after = assert_stream_matches_log(nats_url, reg.stream, database_url)
    assert after[: len(before)] == before
    assert len(after) == len(event_log(database_url)) > len(before)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


MiB = 1024 * 1024


def _big_manifest(config: bytes, layer: bytes, size: int) -> tuple[bytes, dict[str, str]]:
    """A valid OCI image manifest of `size` bytes: its one layer listed 2,000 times and an
    annotation making up the rest."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, layer)] * 2000,
        "annotations": {"org.example.padding": ""},
    }
    pad = size - len(json.dumps(manifest).encode())
    manifest["annotations"] = {"org.example.padding": "x" * pad}
    data = json.dumps(manifest).encode()
    assert len(data) == size
    return data, manifest["annotations"]


def test_a_manifest_larger_than_a_nats_message_is_published_bounded_and_the_rest_follows(
    own_nats, registry_factory, database_url
):
    reg = registry_factory(nats=own_nats.url).start()
    repo = "relay/big"
    layer = b"the one layer"
    config = default_config([layer])
    with reg.client() as client:
        push_image(client, repo, "before", layers=[layer], config=config)
        manifest, annotations = _big_manifest(config, layer, int(3.9 * MiB))
        big = digest_of(manifest)
        put_manifest(client, repo, "big", manifest)
        for i in range(3):
            push_image(client, repo, f"after{i}", layers=[f"after {i}".encode()])

    # Every event after the big one reaches the stream too, once each and in order.
    wait_relayed(own_nats.url, reg.stream, database_url)
    messages = assert_stream_matches_log(own_nats.url, reg.stream, database_url)
    limit = _max_payload(own_nats.url)
    assert limit < len(manifest)  # the server's 1 MiB default: the event cannot go whole
    assert all(len(m.data) <= limit for m in messages)
    pushed = [json.loads(m.data) for m in messages if m.subject.endswith(".manifest.pushed")]
    (doc,) = [d for d in pushed if d["digest"] == big]
    assert doc["truncated"] is True and doc["repository"] == repo
    encoded = msgspec.json.encode(annotations)
    assert doc["omitted"] == {
        "annotations": {
            "digest": "sha256:" + hashlib.sha256(encoded).hexdigest(),
            "size": len(encoded),
            "count": 1,
        }
    }
    assert "annotations" not in doc and len(doc["layers"]) == 2000  # what fits stays
    assert {"type", "position", "aggregate_id", "version", "timestamp"} <= set(doc)
    assert all("truncated" not in d for d in pushed if d["digest"] != big)


def test_history_answers_for_a_huge_manifest_stay_small(registry):
    repo = "history/big"
    layer = b"the one layer"
    config = default_config([layer])
    manifest, annotations = _big_manifest(config, layer, int(3.9 * MiB))
    big = digest_of(manifest)
    with registry.client() as client:
        push_image(client, repo, "small", layers=[layer], config=config)
        put_manifest(client, repo, "big", manifest)
    encoded = msgspec.json.encode(annotations)
    reg = registry
    # A page of GET /api/history and an event of its live stream: details of 16 KiB at most.
    token = token_of(reg.url, *ADMIN)
    params = {"repository": repo, "type": "manifest.pushed"}
    page = call(reg.url, "GET", "/api/history", token, params=params)
    assert page.status_code == 200 and len(page.content) < 256 * 1024, len(page.content)
    (row,) = [e for e in page.json()["data"]["items"] if e["digest"] == big]
    assert row["details"]["truncated"] is True
    assert row["details"]["omitted"]["annotations"]["size"] == len(encoded)
    assert row["details"]["omitted"]["layers"]["count"] == 2000
    assert row["details"]["media_type"] == OCI_MANIFEST
    with (
        httpx.Client(base_url=reg.url, timeout=httpx.Timeout(10, read=20)) as client,
        client.stream(
            "GET",
            "/api/history/stream",
            params={**params, "after": str(row["position"] - 1)},
            headers={"Authorization": f"Bearer {token}"},
        ) as live,
    ):
        data = next(line for line in live.iter_lines() if line.startswith("data:"))
    event = json.loads(data[5:])
    assert event["position"] == row["position"] and event["details"]["truncated"] is True
    assert len(data) < 64 * 1024, len(data)


def _max_payload(nats_url: str) -> int:
    async def main() -> int:
        nc = await nats.connect(nats_url)
        try:
            return nc.max_payload
        finally:
            await nc.close()

    return asyncio.run(main())


def _forge(nats_url: str, subject: str, messages: list[dict[str, str] | None]) -> list[int]:
    """Publish as anyone with NATS access could; returns the stream sequence of each."""

    async def main() -> list[int]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            seqs = []
            for headers in messages:
                ack = await js.publish(f"{subject}.tag.moved", b'{"forged":true}', headers=headers)
                seqs.append(ack.seq)
            return seqs
        finally:
            await nc.close()

    return asyncio.run(main())


def test_forged_stream_messages_never_make_the_relay_skip_or_repeat(
    registry_factory, database_url, nats_url
):
    reg = registry_factory().start()
    with reg.client() as client:
        push_image(client, "relay/forged", "a")
    wait_relayed(nats_url, reg.stream, database_url)
    head = head_position(database_url)
    early = event_log(database_url)[0]

    # Foreign messages on the stream's subjects, then the relay restarts (it looks for its
    # resume point): no Cyp-Position, an early position under another id, and a far one.
    foreign = _forge(
        nats_url,
        reg.subject,
        [
            None,
            {"Cyp-Position": str(early.position), "Nats-Msg-Id": "forged:1"},
            {"Cyp-Position": "999999", "Nats-Msg-Id": "forged:2"},
        ],
    )
    reg.kill()
    reg.start()
    with reg.client() as client:
        push_image(client, "relay/forged", "b", layers=[b"b"])
    wait_relayed(nats_url, reg.stream, database_url, foreign=foreign)
    assert head_position(database_url) > head
    assert_stream_matches_log(nats_url, reg.stream, database_url, foreign=foreign)

    # Again with a forged message last that names no position, and one naming the event
    # the relay would publish next under another id.
    foreign += _forge(
        nats_url,
        reg.subject,
        [
            {"Cyp-Position": str(head_position(database_url) + 1), "Nats-Msg-Id": "forged:3"},
            {"Nats-Msg-Id": "forged:4"},
        ],
    )
    reg.kill()
    reg.start()
    with reg.client() as client:
        push_image(client, "relay/forged", "c", layers=[b"c"])
    wait_relayed(nats_url, reg.stream, database_url, foreign=foreign)
    messages = assert_stream_matches_log(nats_url, reg.stream, database_url, foreign=foreign)
    assert len(messages) == len(event_log(database_url))


def test_health_is_degraded_while_the_relay_lags(own_nats, registry_factory, database_url):
    reg = registry_factory(nats=own_nats.url, CYP_RELAY_MAX_LAG="3")

    def health() -> httpx.Response:
        return httpx.get(f"{reg.url}/health", timeout=10)

    def status(code: int, text: str) -> bool:
        answer = health()
        return answer.status_code == code and answer.json()["data"]["status"] == text

    # A relay elected elsewhere that publishes nothing: this test holds the relay's lock.
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"relay:{reg.stream}",))
        reg.start()
        with reg.client() as client:
            push_image(client, "relay/lag", "a")
        wait_for(lambda: status(200, "degraded"), 30, "degraded while no relay publishes")
        body = health().json()
        assert body["success"] is True and body["data"]["degraded"] == ["relay"]
        relay = body["data"]["relay"]
        assert relay["head"] > relay["position"] and relay["lag_seconds"] >= 3
        info = call(reg.url, "GET", "/api/system/info", token_of(reg.url, *ADMIN))
        assert info.json()["data"]["status"] == "degraded"
    # The lock is free: this registry's relay takes over and catches up.
    wait_for(lambda: status(200, "healthy"), 30, "healthy once the relay caught up")
    assert set(health().json()["data"]) == {"status", "version"}  # the healthy answer as ever
    wait_relayed(own_nats.url, reg.stream, database_url)

    # NATS down while pushes go on: unhealthy (NATS), and the relay named as lagging.
    own_nats.stop()
    with reg.client() as client:
        push_image(client, "relay/lag", "b", layers=[b"b"])
    wait_for(
        lambda: "relay" in health().json()["data"].get("degraded", []), 30, "the relay lagging"
    )
    body = health().json()
    assert health().status_code == 503 and body["data"]["status"] == "unhealthy"
    assert body["data"]["failed"] == ["nats"]
    own_nats.restart()
    wait_for(lambda: status(200, "healthy"), 30, "healthy after NATS came back")
    wait_relayed(own_nats.url, reg.stream, database_url)
    assert_stream_matches_log(own_nats.url, reg.stream, database_url)


def _purge(nats_url: str, stream: str, subject: str | None = None) -> None:
    """Purge `stream`; with `subject`, first create it with a 2 s dedupe window (the relay
    keeps an existing stream's settings)."""

    async def main() -> None:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            if subject:
                config = StreamConfig(stream, subjects=[f"{subject}.>"], duplicate_window=2.0)
                await js.add_stream(config)
            else:
                await js.purge_stream(stream)
        finally:
            await nc.close()

    asyncio.run(main())


def test_a_purged_stream_is_refilled_without_a_gap(registry_factory, database_url, nats_url):
    reg = registry_factory()
    _purge(nats_url, reg.stream, subject=reg.subject)
    reg.start()
    with reg.client() as client:
        push_image(client, "relay/purged", "a")
    wait_relayed(nats_url, reg.stream, database_url)
    # The checkpoint's message goes with the rest; JetStream still remembers the ids of the
    # purged messages for its dedupe window and drops their resends meanwhile.
    _purge(nats_url, reg.stream)
    reg.kill()
    reg.start()
    with reg.client() as client:
        push_image(client, "relay/purged", "b", layers=[b"b"])
    wait_relayed(nats_url, reg.stream, database_url)
    assert_stream_matches_log(nats_url, reg.stream, database_url)
