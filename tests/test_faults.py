"""Faults on the real stack (real Postgres, real NATS, the real `cyp-registry serve`):
kill -9 in the middle of writes, replicas racing for one tag, read-your-writes across
replicas, and /health while NATS is down. After every crash the views must equal a replay
of the event log, row for row."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from domain.content import Tag
from tests.consistency import (
    EVENTS_TABLE,
    assert_stream_matches_log,
    assert_views_equal_replay,
    wait_relayed,
)
from tests.images import (
    default_config,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
    start_upload,
)

MiB = 1024 * 1024
pytestmark = pytest.mark.timeout(180)


def blob_files(data_dir: Path) -> set[str]:
    """Every file of the content-addressed store (uploads in progress excluded)."""
    root = data_dir / "blobs"
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "_uploads"
    }


def slow_body(data: bytes, piece: int = 64 * 1024, delay: float = 0.01):
    """A request body that trickles in (chunked transfer encoding)."""
    for offset in range(0, len(data), piece):
        yield data[offset : offset + piece]
        time.sleep(delay)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_kill_mid_upload_leaves_no_partial_blob(registry_factory, database_url):
    reg = registry_factory().start()
    repo = "faults/upload"
    client = reg.client()
    push_image(client, repo, "base", layers=[b"an earlier layer"])
    stored_before = blob_files(reg.data_dir)

    # Two large uploads in flight: one as a streamed PATCH (resumable), one as a streamed
    # final PUT ?digest= (the request that would complete the blob).
    rng = random.Random(7)
    patched, finished = rng.randbytes(48 * MiB), rng.randbytes(48 * MiB)
    patch_at, put_at = start_upload(client, repo), start_upload(client, repo)
    uploads = reg.data_dir / "blobs" / "_uploads"
    outcome: dict[str, object] = {}

    def send(kind: str, method: str, url: str, data: bytes, params: dict[str, str]) -> None:
        try:
            with reg.client(timeout=60) as c:
                outcome[kind] = c.request(
                    method,
                    url,
                    params=params,
                    content=slow_body(data),
                    headers={"Content-Type": "application/octet-stream"},
                ).status_code
        except httpx.HTTPError as exc:
            outcome[kind] = exc

    threads = [
        threading.Thread(target=send, args=("patch", "PATCH", patch_at, patched, {})),
        threading.Thread(
            target=send, args=("put", "PUT", put_at, finished, {"digest": digest_of(finished)})
        ),
    ]
    for t in threads:
        t.start()

    def received(location: str) -> int:
        found = list(uploads.glob(location.rsplit("/", 1)[1] + ".*"))  # <id>.<repo key>
        return found[0].stat().st_size if found else 0

    wait_for(
        lambda: received(patch_at) >= 2 * MiB and received(put_at) >= 2 * MiB,
        30,
        "both uploads to be streaming",
    )
    reg.kill()
    for t in threads:
        t.join(30)
    assert len(outcome) == 2 and all(isinstance(o, httpx.HTTPError) for o in outcome.values()), (
        outcome
    )
    assert blob_files(reg.data_dir) == stored_before, "a partial blob reached the store"

    reg.start()
    client = reg.client()
    for data in (patched, finished):
        assert client.head(f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404
        assert client.get(f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404
    assert blob_files(reg.data_dir) == stored_before

    # The interrupted PATCH upload is resumable from what reached the disk...
    r = client.get(patch_at)
    assert r.status_code == 204, r.text
    have = int(r.headers["range"].split("-")[1]) + 1
    assert 0 < have < len(patched)
    r = client.patch(
        patch_at,
        content=patched[have:],
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{have}-{len(patched) - 1}",
        },
    )
    assert r.status_code == 202, r.text
    r = client.put(r.headers["location"], params={"digest": digest_of(patched)})
    assert r.status_code == 201, r.text
    # ...and the partial body of the interrupted PUT can never complete as that blob.
    r = client.put(put_at, params={"digest": digest_of(finished)})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert client.head(f"/v2/{repo}/blobs/{digest_of(finished)}").status_code == 404
    # Uploaded again from scratch, it is there, whole.
    assert push_blob(client, repo, finished, chunk_size=16 * MiB) == digest_of(finished)
    for data in (patched, finished):
        r = client.get(f"/v2/{repo}/blobs/{digest_of(data)}")
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == digest_of(data).split(":")[1]
    assert push_image(client, repo, "after", layers=[patched, finished])

    reg.stop()
    assert_views_equal_replay(database_url, reg.data_dir)


def test_kill_mid_manifest_puts_leaves_no_dangling_tag(registry_factory, database_url, nats_url):
    reg = registry_factory().start()
    repo = "faults/manifests"
    client = reg.client()
    layers = [b"layer one", b"layer two"]
    config = default_config(layers)
    push_image(client, repo, "base", layers=layers, config=config)

    results: list[tuple[str, str, int]] = []  # (reference, digest, status) of answered PUTs
    stop = threading.Event()

    def writer(w: int) -> None:
        with reg.client() as c:
            for i in range(10_000):
                if stop.is_set():
                    return
                manifest = image_manifest(config, layers, {"writer": str(w), "n": str(i)})
                digest = digest_of(manifest)
                reference = f"t{i % 4}" if i % 3 else digest  # shared tags move constantly
                try:
                    r = put_manifest(c, repo, reference, manifest, check=False)
                except httpx.HTTPError:
                    return
                results.append((reference, digest, r.status_code))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(results) >= 60, 60, "manifest PUTs to be answered")
    reg.kill()
    stop.set()
    for t in threads:
        t.join(30)
    statuses = {status for _, _, status in results}
    assert statuses == {201}, statuses

    reg.start()
    client = reg.client()
    with psycopg.connect(database_url) as conn:
        dangling = conn.execute(
            "SELECT t.tag, t.digest FROM tags t LEFT JOIN manifests m"
            " ON m.repository = t.repository AND m.digest = t.digest WHERE m.digest IS NULL"
        ).fetchall()
        tags = dict(conn.execute("SELECT tag, digest FROM tags WHERE repository = %s", (repo,)))
        stored = [row[0] for row in conn.execute("SELECT digest FROM manifests")]
    assert dangling == []
    assert "base" in tags and set(tags) <= {"base", "t0", "t1", "t2", "t3"}
    listed = client.get(f"/v2/{repo}/tags/list").json()["tags"]
    assert sorted(listed) == sorted(tags)
    for tag, digest in tags.items():
        r = client.get(f"/v2/{repo}/manifests/{tag}")
        assert r.status_code == 200, (tag, r.text)
        assert r.headers["docker-content-digest"] == digest == digest_of(r.content)
    for digest in stored:
        r = client.get(f"/v2/{repo}/manifests/{digest}")
        assert r.status_code == 200 and digest_of(r.content) == digest
    acknowledged = {digest for _, digest, status in results if status == 201}
    assert acknowledged <= set(stored), "an acknowledged manifest is lost"
    # The relay died with the process too: its restart publishes the rest, once each.
    wait_relayed(nats_url, reg.stream, database_url)
    assert_stream_matches_log(nats_url, reg.stream, database_url)

    reg.stop()
    assert_views_equal_replay(database_url, reg.data_dir)


def test_two_replicas_moving_one_tag(registry_factory, database_url, nats_url):
    a = registry_factory().start()
    b = registry_factory(stream=a.stream, subject=a.subject).start()
    repo, tag = "race/hot", "hot"
    layers = [b"hot layer"]
    config = default_config(layers)
    with a.client() as client:
        push_image(client, repo, None, layers=layers, config=config)

    results: list[tuple[str, int, float]] = []  # (digest, status, time answered)

    def mover(replica, w: int, moves: int) -> None:
        with replica.client(timeout=60) as c:
            for i in range(moves):
                manifest = image_manifest(config, layers, {"by": f"{replica.port}-{w}-{i}"})
                r = put_manifest(c, repo, tag, manifest, check=False)
                results.append((digest_of(manifest), r.status_code, time.monotonic()))

    threads = [
        threading.Thread(target=mover, args=(replica, w, 25))
        for replica in (a, b)
        for w in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 200
    errors = [status for _, status, _ in results if status >= 500]
    assert not errors, f"{len(errors)} server errors: {sorted(set(errors))}"
    moved = [digest for digest, status, _ in results if status == 201]
    assert len(moved) == len(set(moved)) == 200  # every PUT is a new digest: every one moves

    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT type, digest, details->>'from_digest' FROM history"
            " WHERE repository = %s AND tag = %s ORDER BY position",
            (repo, tag),
        ).fetchall()
        stored = conn.execute(
            f"SELECT count(*) FROM {EVENTS_TABLE} WHERE originator_id = %s",
            (Tag.create_id(repo, tag),),
        ).fetchone()[0]
    assert stored == len(moved)
    assert [kind for kind, _, _ in events] == ["tag.moved"] * len(moved)
    assert sorted(d for _, d, _ in events) == sorted(moved)
    # The moves form one chain: each starts where the one before ended.
    assert events[0][2] is None
    assert all(events[i][2] == events[i - 1][1] for i in range(1, len(events)))
    last = events[-1][1]
    for replica in (a, b):
        with replica.client() as c:
            r = c.get(f"/v2/{repo}/manifests/{tag}")
        assert r.status_code == 200 and r.headers["docker-content-digest"] == last
    # One relay for the two replicas (elected by an advisory lock): each event once, in order.
    wait_relayed(nats_url, a.stream, database_url)
    assert_stream_matches_log(nats_url, a.stream, database_url)


def test_read_your_writes_across_replicas(registry_factory):
    a = registry_factory().start()
    b = registry_factory(stream=a.stream, subject=a.subject).start()
    repo = "ryw/app"
    ca = a.client()
    cb = b.client()
    base = b"shared layer"
    for i in range(40):
        layer = f"layer {i}".encode()
        digest = push_blob(ca, repo, layer)
        assert cb.head(f"/v2/{repo}/blobs/{digest}").status_code == 200, i
        config = default_config([base, layer])
        push_blob(ca, repo, config)
        if i == 0:
            push_blob(ca, repo, base)
        manifest = image_manifest(config, [base, layer])
        put_manifest(ca, repo, "latest", manifest)
        r = cb.get(f"/v2/{repo}/manifests/latest")
        assert r.status_code == 200 and r.headers["docker-content-digest"] == digest_of(manifest), i
        assert f"v{i}" not in cb.get(f"/v2/{repo}/tags/list").json()["tags"]
        put_manifest(ca, repo, f"v{i}", manifest)
        assert f"v{i}" in cb.get(f"/v2/{repo}/tags/list").json()["tags"], i
        if i % 4 == 0:
            assert ca.delete(f"/v2/{repo}/manifests/v{i}").status_code == 202
            assert cb.get(f"/v2/{repo}/manifests/v{i}").status_code == 404, i


def test_surviving_replica_takes_over_views_and_relay(registry_factory, database_url, nats_url):
    a = registry_factory().start()  # first up: holds the views' and the relay's locks
    b = registry_factory(stream=a.stream, subject=a.subject).start()
    repo = "failover/app"
    with a.client() as ca:
        push_image(ca, repo, "before", layers=[b"before"])
    a.kill()
    with b.client() as cb:
        for i in range(5):
            started = time.monotonic()
            digest = push_image(cb, repo, f"after{i}", layers=[f"after {i}".encode()])
            assert time.monotonic() - started < 8
            r = cb.get(f"/v2/{repo}/manifests/after{i}")
            assert r.status_code == 200 and r.headers["docker-content-digest"] == digest, i
        assert sorted(cb.get(f"/v2/{repo}/tags/list").json()["tags"]) == [
            "after0",
            "after1",
            "after2",
            "after3",
            "after4",
            "before",
        ]
    wait_relayed(nats_url, a.stream, database_url)
    assert_stream_matches_log(nats_url, a.stream, database_url)
    b.stop()
    assert_views_equal_replay(database_url, b.data_dir)


def test_health_reports_nats_outage(own_nats, registry_factory):
    reg = registry_factory(nats=own_nats.url).start()

    def health() -> httpx.Response:
        return httpx.get(f"{reg.url}/health", timeout=10)

    wait_for(lambda: health().status_code == 200, 15, "healthy")
    own_nats.stop()
    wait_for(lambda: health().status_code == 503, 15, "unhealthy while NATS is down")
    body = health().json()
    assert body["success"] is False
    assert body["data"]["status"] == "unhealthy"
    assert "nats" in body["data"]["failed"]
    assert "postgres" not in body["data"]["failed"]
    own_nats.restart()
    wait_for(lambda: health().status_code == 200, 15, "healthy after NATS came back")
    assert health().json()["data"]["status"] == "healthy"
