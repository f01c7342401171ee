"""No event skipped under concurrent writes: notification ids become visible in commit order.

Readers of the log (the projection runner, the relay, every later worker) read "the events
after my position". That is only safe if no transaction can still commit an id below one a
reader has already seen: event inserts must be serialized through their commit. The first
test holds one insert open and checks a second one waits for it; the second hammers two real
registry processes with writers of every kind and then checks views, stream and pulls.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from psycopg import sql

from domain.caller import Caller
from domain.registry import Registry
from tests.apiclient import call, token_of
from tests.consistency import (
    EVENTS_TABLE,
    assert_stream_matches_log,
    assert_views_equal_replay,
    wait_relayed,
)
from tests.images import default_config, digest_of, image_manifest, push_blob, put_manifest
from tests.support import registry_app

WHO = Caller("tester", "127.0.0.1")
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def app(database_url: str) -> Iterator[Registry]:
    with registry_app(database_url, pool_size=8, max_overflow=8) as registry:
        yield registry


def _visible_ids(database_url: str) -> list[int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        query = sql.SQL("SELECT notification_id FROM {} ORDER BY notification_id").format(
            sql.Identifier(EVENTS_TABLE)
        )
        return [row[0] for row in conn.execute(query)]


def test_an_insert_waits_for_the_one_in_flight(app: Registry, database_url: str) -> None:
    """Transaction A takes an id and stays open; B's save must not become visible before A
    commits, or a reader between the two commits would pass over A's id for good."""
    app.register_user("first", "a-good-password-1", "user", WHO)
    before = _visible_ids(database_url)
    # A: an insert of an event, in a transaction we hold open (it has taken its id).
    held = psycopg.connect(database_url)
    try:
        held.execute("SET lock_timeout = '20s'")
        held.execute(
            sql.SQL(
                "INSERT INTO {} (originator_id, originator_version, topic, state)"
                " VALUES (%s, 1, 'test:Held', '\\x')"
            ).format(sql.Identifier(EVENTS_TABLE)),
            (uuid.uuid4(),),
        )
        done = threading.Event()
        failure: list[BaseException] = []

        def second() -> None:
            try:
                app.register_user("second", "a-good-password-2", "user", WHO)
            except BaseException as exc:  # reported below
                failure.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=second)
        thread.start()
        finished_early = done.wait(1.5)
        visible_meanwhile = _visible_ids(database_url)
        held.commit()
    finally:
        held.close()
    thread.join(30)
    assert not failure, failure
    assert not finished_early, "a save committed while an earlier insert was still open"
    assert visible_meanwhile == before
    after = _visible_ids(database_url)
    new = [i for i in after if i not in before]
    assert new == sorted(new) and len(new) >= 3  # A's one event, then the user + namespace


# -- the hammer: two replicas, writers of every kind, no fault at all -----------------------------
PUSHERS_PER_REPLICA = 12
PUSHES_EACH = 14


def test_concurrent_writers_of_every_kind_lose_nothing(registry_factory, database_url, nats_url):
    a = registry_factory().start()
    b = registry_factory(stream=a.stream, subject=a.subject).start()
    acknowledged: dict[tuple[str, str], str] = {}  # (repo, tag) -> digest, never moved again
    deleted: set[tuple[str, str]] = set()
    moved: list[tuple[str, str]] = []  # (repo, tag) of hot tags that were answered 201
    errors: list[str] = []
    api: dict[int, str] = {}
    for reg in (a, b):
        api[reg.port] = token_of(reg.url, "admin", "cyp-test-admin-pw")

    def pusher(reg, w: int) -> None:
        repo = f"hammer/r{w % 5}"
        with reg.client() as c:
            for i in range(PUSHES_EACH):
                try:
                    layer = f"layer {reg.port} {w} {i}".encode()
                    config = default_config([layer])
                    push_blob(c, repo, layer)
                    push_blob(c, repo, config)
                    manifest = image_manifest(config, [layer])
                    tag = f"p{reg.port}-{w}-{i}"
                    put_manifest(c, repo, tag, manifest)
                    acknowledged[(repo, tag)] = digest_of(manifest)
                    if i % 4 == 0:  # a hot tag moves too
                        hot = f"hot{i % 3}"
                        put_manifest(c, repo, hot, manifest)
                        moved.append((repo, hot))
                    if i % 5 == 4:  # and some tags go again
                        gone = f"p{reg.port}-{w}-{i - 1}"
                        r = c.delete(f"/v2/{repo}/manifests/{gone}")
                        if r.status_code == 202:
                            deleted.add((repo, gone))
                except (AssertionError, httpx.HTTPError) as exc:
                    errors.append(f"{w}/{i}: {exc}")

    def admin_writer(reg, w: int) -> None:
        for i in range(4):
            ns = f"team{reg.port}w{w}n{i}"
            r = call(reg.url, "POST", "/api/namespaces", api[reg.port], json={"name": ns})
            if r.status_code != 201:
                errors.append(f"namespace {ns}: {r.status_code} {r.text[:200]}")

    threads = [
        threading.Thread(target=pusher, args=(reg, w))
        for reg in (a, b)
        for w in range(PUSHERS_PER_REPLICA)
    ] + [threading.Thread(target=admin_writer, args=(reg, w)) for reg in (a, b) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not errors, errors[:5]
    assert len(acknowledged) == 2 * PUSHERS_PER_REPLICA * PUSHES_EACH

    # Every acknowledged tag pulls, with its layers, from both replicas (the live views).
    for reg in (a, b):
        with reg.client() as c:
            for (repo, tag), digest in acknowledged.items():
                r = c.get(f"/v2/{repo}/manifests/{tag}")
                if (repo, tag) in deleted:
                    assert r.status_code == 404, (repo, tag)
                    continue
                assert r.status_code == 200, (reg.port, repo, tag, r.text[:200])
                assert r.headers["docker-content-digest"] == digest
                for layer in r.json()["layers"]:
                    blob = c.head(f"/v2/{repo}/blobs/{layer['digest']}")
                    assert blob.status_code == 200, (repo, tag, layer["digest"])
            for repo, hot in set(moved):
                assert c.get(f"/v2/{repo}/manifests/{hot}").status_code == 200, (repo, hot)

    # The stream holds every event exactly once, in log order.
    wait_relayed(nats_url, a.stream, database_url)
    assert_stream_matches_log(nats_url, a.stream, database_url)
    a.stop()
    b.stop()
    # Every view equals a fresh replay, row for row.
    assert_views_equal_replay(database_url, a.data_dir)


def test_a_reader_tailing_the_log_under_concurrent_saves_misses_nothing(
    app: Registry, database_url: str
) -> None:
    """Like the projection runner and the relay: read the events after the last one seen,
    again and again, while 12 writers save; at the end the reader has seen every event."""
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        position = 0
        try:
            while True:
                last_round = stop.is_set()
                batch = app.recorder.select_notifications(
                    start=position, limit=500, inclusive_of_start=False
                )
                if batch:
                    seen.extend(n.id for n in batch)
                    position = batch[-1].id
                elif last_round:
                    return
        except BaseException as exc:  # reported below
            errors.append(exc)

    def writer(w: int) -> None:
        try:
            for i in range(150):
                digest = f"sha256:{w:032x}{i:032x}"
                app.link_blob(f"tail/w{w}/r{i % 7}", digest, 1, WHO)
        except BaseException as exc:  # reported below
            errors.append(exc)

    follower = threading.Thread(target=reader)
    follower.start()
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(12)]
    for t in writers:
        t.start()
    for t in writers:
        t.join(120)
    stop.set()
    follower.join(60)
    assert not errors, errors[:3]
    stored = _visible_ids(database_url)
    assert len(stored) >= 12 * 150
    missed = sorted(set(stored) - set(seen))
    assert not missed, f"the reader passed over {len(missed)} events: {missed[:10]}"
    assert seen == stored
