"""Stored events stay readable when their classes move.

eventsourcing stores the topic (`module:Class.Event`) of every event, of every aggregate
(in its creation event) and of every snapshot's aggregate. `tests/data/log_before_issue10.json`
is a log written by the code before issue 10 moved the domain's classes (commit 600a327): every
event class, a snapshot of a tag moved 52 times, all under the topics of that time (e.g.
`domain.aggregates:Tag.Moved`). It is stored into a fresh database as it was written, then
read back through the application: aggregates load (the tag from its snapshot), commands
continue them, and the views built from it equal those built from the same log under today's
topics, and the live ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import psycopg
import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from cyp_registry.wiring import eventsourcing_env
from domain.caller import Caller
from domain.content import Manifest, Tag
from domain.manifests import OCI_MANIFEST, ManifestInfo
from domain.registry import Registry
from domain.topics import MOVED
from migrations import migrate
from tests.consistency import view_rows
from tests.support import ROOT, create_database, drop_database
from workers.projector import ProjectionRunner

LOG = Path(__file__).parent / "data" / "log_before_issue10.json"
WHO = Caller("tester", "192.0.2.99")
_decode = msgspec.msgpack.Decoder().decode
_encode = msgspec.msgpack.Encoder().encode


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def image(i: int) -> tuple[str, ManifestInfo]:
    """Image i as the log's writer pushed it."""
    info = ManifestInfo(
        media_type=OCI_MANIFEST,
        config={
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha("config"),
            "size": 2,
        },
        layers=[
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha(f"layer-{i}"),
                "size": 10 + i,
            }
        ],
        manifests=[],
        subject=None,
        artifact_type=None,
        annotations={"n": str(i)},
    )
    return sha(f"image-{i}-None"), info


def in_our_tree(module: str) -> bool:
    """Whether our tree has the module (a package, or a file)."""
    path = ROOT.joinpath(*module.split("."))
    return path.is_dir() or path.with_suffix(".py").exists()


def stored(rows: list[dict[str, Any]]) -> list[StoredEvent]:
    return [
        StoredEvent(
            originator_id=UUID(r["originator_id"]),
            originator_version=r["originator_version"],
            topic=r["topic"],
            state=base64.b64decode(r["state"]),
        )
        for r in rows
    ]


def old_log() -> tuple[list[StoredEvent], list[StoredEvent]]:
    data = json.loads(LOG.read_text())
    return stored(data["events"]), stored(data["snapshots"])


def topics_inside(event: StoredEvent) -> set[str]:
    """The topics a stored event or snapshot holds: its own and its aggregate's."""
    state = _decode(event.state)
    return {event.topic} | {state[k] for k in ("originator_topic", "topic") if k in state}


def today(event: StoredEvent) -> StoredEvent:
    """The stored event as today's code writes it: every topic in it the current one."""
    state = _decode(event.state)
    for key in ("originator_topic", "topic"):
        if key in state:
            state[key] = get_topic(resolve_topic(state[key]))
    return StoredEvent(
        originator_id=event.originator_id,
        originator_version=event.originator_version,
        topic=get_topic(resolve_topic(event.topic)),
        state=_encode(state),
    )


def catch_up(app: Registry, database_url: str) -> None:
    runner = ProjectionRunner(app, database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        while runner.step(conn):
            pass


def rebuilt_views(app: Registry, database_url: str) -> dict[str, list[str]]:
    ProjectionRunner(app, database_url).rebuild()
    return view_rows(database_url)


@pytest.fixture
def other_database(pg_admin_url: str) -> Iterator[str]:
    url = create_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, url)


def registry(database_url: str) -> Registry:
    migrate(database_url)
    env = eventsourcing_env(database_url)
    env.update(POSTGRES_POOL_SIZE="2", POSTGRES_MAX_OVERFLOW="2")
    return Registry(env=env)


def store(app: Registry, events: list[StoredEvent], snapshots: list[StoredEvent]) -> None:
    """Into the event store as written: positions 1.. in log order, the snapshots beside."""
    positions = app.recorder.insert_events(events)
    assert positions == list(range(1, len(events) + 1))
    assert app.snapshots is not None
    app.snapshots.recorder.insert_events(snapshots)


def test_the_log_holds_old_topics_that_resolve_through_registration() -> None:
    events, snapshots = old_log()
    found = set().union(*map(topics_inside, events + snapshots))
    moved = {t for t in found if t.partition(":")[0] in MOVED}
    # The log really holds old names, of every module that moved, and those modules are
    # gone: only the registration (domain.topics, imported with the application) finds them.
    assert {t.partition(":")[0] for t in moved} == set(MOVED)
    for module in MOVED:
        assert not in_our_tree(module), module
    assert {"domain.aggregates:Tag", "domain.aggregates:Tag.Moved"} <= moved
    for topic in found:
        current = get_topic(resolve_topic(topic))
        assert (current != topic) == (topic in moved), topic
    assert resolve_topic("domain.aggregates:Tag.Moved") is Tag.Moved
    assert resolve_topic("domain.aggregates:Manifest") is Manifest
    assert not set(MOVED) & set(sys.modules)  # resolved without importing anything


def test_an_old_log_loads_continues_and_replays(database_url: str, other_database: str) -> None:
    events, snapshots = old_log()
    old, new = registry(database_url), registry(other_database)
    try:
        store(old, events, snapshots)
        converted = [today(e) for e in events]
        assert sum(a.topic != b.topic for a, b in zip(events, converted, strict=True)) > 50
        store(new, converted, [today(s) for s in snapshots])

        # Every aggregate loads from the old topics as it does from today's, at its version.
        versions: dict[UUID, int] = {}
        for event in events:
            versions[event.originator_id] = event.originator_version
        for originator_id, version in versions.items():
            then, now = old.repository.get(originator_id), new.repository.get(originator_id)
            assert type(then) is type(now) and then.version == version
            assert vars(then) == vars(now)
        # The tag moved 52 times is read from its snapshot (of topic domain.aggregates:Tag).
        hot = Tag.create_id("org/app", "hot")
        (snapshot,) = snapshots
        assert snapshot.originator_id == hot
        assert _decode(snapshot.state)["topic"] == "domain.aggregates:Tag"
        assert old.snapshots is not None
        (read,) = old.snapshots.get(hot, desc=True, limit=1)
        assert isinstance(read, Snapshot)
        from_snapshot = read.mutate(None)
        assert type(from_snapshot) is Tag and from_snapshot.version == 50
        d0, _ = image(0)
        d1, i1 = image(1)
        assert old.tag_digest("org/app", "hot") == d0
        assert old.tag_digest("org/app", "v1") is None  # deleted
        assert old.manifest_exists("org/app", d1)
        assert old.blob_linked("org/app", sha("layer-2"))
        assert old.find_user("bob").role == "admin"

        # The views built from the old topics equal those built from today's.
        assert rebuilt_views(old, database_url) == rebuilt_views(new, other_database)

        # Commands continue the old aggregates; the mixed log replays as it was projected live.
        assert old.push_manifest("org/app", d1, 101, i1, "hot", WHO) is not None
        assert old.tag_digest("org/app", "hot") == d1
        old.delete_tag("org/app", "latest", WHO)
        old.set_member("org", "bob", "reader", WHO)
        old.change_password("alice", "alice-password-3", WHO)
        catch_up(old, database_url)
        live = view_rows(database_url)
        assert rebuilt_views(old, database_url) == live
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT tag, digest FROM tags WHERE repository = 'org/app' ORDER BY tag"
            ).fetchall()
        assert rows == [("hot", d1)]
    finally:
        old.close()
        new.close()
