"""The relay from the event store to JetStream, on the real Postgres and a real nats-server:
every stored event reaches the stream exactly once and in log order — through NATS outages,
relay crashes and restarts from an older checkpoint."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import psycopg
import pytest

from cyp_registry.wiring import eventsourcing_env
from domain.registry import Registry
from tests.auth import client as authed_client
from tests.consistency import (
    assert_stream_matches_log,
    event_log,
    stream_messages,
    wait_relayed,
)
from tests.images import push_image
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
