"""Group commit (domain/commands/group_commit.py) on the real event store: 16 pushers at once
are stored in fewer transactions than commands, and every image's tags, blob links and
history events are there; a conflict (or a refused event) in one command of a batch fails
that command alone, the others of its batch are stored."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import RecordConflictError

from cyp_registry.wiring import eventsourcing_env
from domain.caller import Caller
from domain.content import BlobLink
from domain.manifests import ManifestInfo
from domain.registry import Registry
from tests.consistency import assert_views_equal_replay
from tests.support import registry_app
from tests.test_replay import catch_up, sha
from workers.projector import ProjectionRunner

WHO = Caller("pusher", "127.0.0.1")
PUSHERS = 16
IMAGES_EACH = 5
LAYERS = 3
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def app(database_url: str) -> Iterator[Registry]:
    with registry_app(database_url, pool_size=16, max_overflow=4) as registry:
        yield registry


def _image(pusher: int, n: int) -> tuple[str, str, list[str], ManifestInfo]:
    """(repository, tag, blobs, manifest) of one pusher's n-th image: a config and 3 layers
    of its own, in a repository of its own (different stripes: they may share a batch)."""
    repo = f"gc/p{pusher}"
    config = sha(f"config-{pusher}-{n}")
    layers = [sha(f"layer-{pusher}-{n}-{i}") for i in range(LAYERS)]
    info = ManifestInfo(
        media_type=OCI_MANIFEST,
        config={
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config,
            "size": 100,
        },
        layers=[
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": 65536}
            for d in layers
        ],
        manifests=[],
        subject=None,
        artifact_type=None,
        annotations={},
    )
    return repo, f"v{n}", [config, *layers], info


def _rows(database_url: str, query: str) -> set[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return set(conn.execute(query).fetchall())


def test_sixteen_pushers_share_transactions_and_lose_nothing(
    app: Registry, database_url: str, tmp_path
) -> None:
    positions: dict[tuple[str, str], int] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(PUSHERS)

    def pusher(p: int) -> None:
        try:
            start.wait()
            for n in range(IMAGES_EACH):
                repo, tag, blobs, info = _image(p, n)
                for blob in blobs:
                    app.link_blob(repo, blob, 65536, WHO)
                digest = sha(f"manifest-{p}-{n}")
                position = app.push_manifest(repo, digest, 1000, info, tag, WHO)
                assert position is not None
                positions[repo, tag] = position
        except BaseException as exc:  # reported below
            errors.append(exc)

    before = app.group_commit.transactions, app.group_commit.commands
    threads = [threading.Thread(target=pusher, args=(p,)) for p in range(PUSHERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[:3]
    commands = app.group_commit.commands - before[1]
    transactions = app.group_commit.transactions - before[0]
    assert commands == PUSHERS * IMAGES_EACH * (LAYERS + 2)
    assert transactions < commands  # they shared transactions

    # Every command's own position is the position of its own last event.
    with psycopg.connect(database_url) as conn:
        runner = ProjectionRunner(app, database_url)
        catch_up(runner, conn)
        for (repo, tag), position in positions.items():
            (topic,) = conn.execute(
                "SELECT topic FROM registry_events WHERE notification_id = %s", (position,)
            ).fetchone()
            assert topic.endswith("Tag.Created"), (repo, tag, topic)

    tags = _rows(database_url, "SELECT repository, tag, digest FROM tags")
    links = _rows(database_url, "SELECT repository, digest FROM blob_links")
    history = _rows(database_url, "SELECT type, repository, tag, digest FROM history")
    for p in range(PUSHERS):
        for n in range(IMAGES_EACH):
            repo, tag, blobs, _ = _image(p, n)
            digest = sha(f"manifest-{p}-{n}")
            assert (repo, tag, digest) in tags
            assert all((repo, blob) in links for blob in blobs)
            kinds = {row[0] for row in history if row[1] == repo and row[3] == digest}
            assert {"manifest.pushed", "tag.moved"} <= kinds, (repo, tag, kinds)
            assert {(r[1], r[3]) for r in history if r[0] == "blob.linked"} >= {
                (repo, b) for b in blobs
            }
    assert_views_equal_replay(database_url, tmp_path)


def _gate(app: Registry) -> tuple[threading.Event, threading.Event]:
    """Hold the transactions until the test sets `go`; `held` is set once the first (its
    command the leader) is held: the commands queued meanwhile are then written together."""
    put = app.group_commit._put
    go, held = threading.Event(), threading.Event()

    def gated(events):
        held.set()
        assert go.wait(30), "the test never let the held transaction go"
        return put(events)

    app.group_commit._put = gated
    return go, held


def _on_own_stripes(app: Registry, count: int) -> list[str]:
    """`count` repository names whose commands do not take turns in `app` (each its own
    stripe of `Commands._command`), so that they may all wait in one batch."""
    names: dict[int, str] = {}
    for i in range(1000):
        name = f"gc/r{i}"
        names.setdefault(hash(name) % len(app._stripes), name)
        if len(names) == count:
            return list(names.values())
    raise AssertionError("no repository names on distinct stripes")


def _queued(app: Registry, n: int) -> None:
    for _ in range(3000):
        if app.group_commit.queued() >= n:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{app.group_commit.queued()} commands queued, expected {n}")


def _linked_events(repo: str, digest: str) -> list[Any]:
    link = BlobLink.create(repo, digest, 1, *WHO)
    return list(link.collect_events())


def test_a_conflict_in_a_batch_fails_only_its_command(app: Registry, database_url: str):
    app.link_blob("gc/conflict", sha("taken"), 1, WHO)  # BlobLink version 1 exists
    go, held = _gate(app)
    outcomes: dict[str, Any] = {}

    def save(name: str, events: list[Any]) -> None:
        try:
            outcomes[name] = app.group_commit.save(events)
        except BaseException as exc:  # the outcome under test
            outcomes[name] = exc

    first = threading.Thread(target=save, args=("first", _linked_events("gc/c", sha("first"))))
    first.start()
    assert held.wait(30)  # the first is the leader, its transaction held
    batch = {f"ok{i}": _linked_events("gc/c", sha(f"ok{i}")) for i in range(5)}
    # the same aggregate's version 1 again: another writer saved it first
    batch["clash"] = _linked_events("gc/conflict", sha("taken"))
    threads = [threading.Thread(target=save, args=item) for item in batch.items()]
    for thread in threads:
        thread.start()
    _queued(app, len(batch))  # the first is being written (held), the batch waits behind it
    go.set()
    for thread in [first, *threads]:
        thread.join(60)
    assert isinstance(outcomes["clash"], RecordConflictError), outcomes["clash"]
    stored = {name for name, out in outcomes.items() if not isinstance(out, BaseException)}
    assert stored == {"first", *(f"ok{i}" for i in range(5))}
    links = _rows(
        database_url,
        "SELECT count(*) FROM registry_events WHERE topic LIKE '%BlobLink.Linked'",
    )
    assert links == {(7,)}  # the taken one, first and the five


def test_a_conflicting_command_in_a_batch_is_retried_alone(app: Registry, database_url: str):
    """Two replicas link the same blob at once: ours read it unlinked, the other replica
    saves first, so our save conflicts inside a batch; that command alone retries with fresh
    state (already linked: nothing to do), the others of its batch are stored once."""
    repos = _on_own_stripes(app, 4)
    for repo in repos:  # the repositories (and their namespace) exist: only links are new
        app.link_blob(repo, sha(f"base-{repo}"), 1, WHO)
    other = Registry(env=eventsourcing_env(database_url))
    try:
        go, held = _gate(app)
        results: dict[str, Any] = {}

        def link(name: str, repo: str, digest: str) -> None:
            try:
                results[name] = app.link_blob(repo, digest, 1, WHO)
            except BaseException as exc:  # reported below
                results[name] = exc

        jobs = {
            "lead": (repos[0], sha("lead")),  # the leader, held by the gate
            "shared": (repos[1], sha("shared")),
            "a": (repos[2], sha("a")),
            "b": (repos[3], sha("b")),
        }
        threads = {n: threading.Thread(target=link, args=(n, *w)) for n, w in jobs.items()}
        threads["lead"].start()
        assert held.wait(30)
        for name in ("shared", "a", "b"):
            threads[name].start()
        _queued(app, 3)  # all three read the state and wait behind the held transaction
        assert other.link_blob(*jobs["shared"], 1, WHO) is not None  # the other replica
        go.set()
        for thread in threads.values():
            thread.join(60)
        assert not [r for r in results.values() if isinstance(r, BaseException)], results
        assert results["shared"] is None  # retried: the other replica had linked it
        assert all(isinstance(results[n], int) for n in ("lead", "a", "b"))
        counts = _rows(
            database_url,
            "SELECT originator_id::text, count(*) FROM registry_events"
            " WHERE topic LIKE '%BlobLink.Linked' GROUP BY 1",
        )
        assert all(count == 1 for _, count in counts)  # nothing stored twice
        assert len(counts) == len(repos) + len(jobs)
    finally:
        other.close()


class _Interrupt(BaseException):
    """What a KeyboardInterrupt or SystemExit in the leader's thread is to the others."""


def test_an_interrupted_leader_leaves_no_command_waiting_forever() -> None:
    from domain.commands.group_commit import GroupCommit

    queued = threading.Event()
    calls: list[int] = []

    def put(events):
        calls.append(len(events))
        if len(calls) == 1:  # the leader's own transaction: wait for a follower, then stop
            assert queued.wait(10)
            return list(events)
        raise _Interrupt

    group = GroupCommit(put)
    outcome: dict[str, BaseException | None] = {}

    def save(name: str) -> None:
        try:
            group.save([SimpleNamespace(originator_id=uuid.uuid4())])
            outcome[name] = None
        except BaseException as exc:  # the outcome under test
            outcome[name] = exc

    first = threading.Thread(target=save, args=("first",))
    first.start()
    for _ in range(2000):
        if calls:
            break
        threading.Event().wait(0.005)
    followers = [threading.Thread(target=save, args=(f"f{i}",)) for i in range(2)]
    for thread in followers:
        thread.start()
    for _ in range(2000):
        if group.queued() >= 2:
            break
        threading.Event().wait(0.005)
    queued.set()
    for thread in [first, *followers]:
        thread.join(10)
        assert not thread.is_alive()
    assert outcome["first"] is None
    errors = sorted(type(outcome[f"f{i}"]).__name__ for i in range(2))
    assert errors == ["RuntimeError", "_Interrupt"]  # the new leader, and the one it took along
