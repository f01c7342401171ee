"""The aggregates and their events, without a database; the msgpack transcoder round trip."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import msgspec
import pytest
from eventsourcing.domain import Snapshot
from hypothesis import given
from hypothesis import strategies as st

from domain.caller import SYSTEM, Caller
from domain.content import BlobLink, Manifest, Repository, Tag
from domain.documents import bounded, event_document, event_fields, event_kind
from domain.errors import RegistryError
from domain.ids import aggregate_id
from domain.manifests import ManifestInfo
from domain.registry import Registry
from domain.transcoder import MsgpackTranscoder

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
WHO = ("alice", "10.0.0.1")


def replay(events: list[Any]) -> Any:
    """Rebuild an aggregate from its events, as the repository does."""
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def manifest_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(
        size=321,
        media_type="application/vnd.oci.image.manifest.v1+json",
        config={"mediaType": "application/vnd.oci.image.config.v1+json", "digest": B, "size": 2},
        layers=[{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": C, "size": 3}],
        manifests=[],
        subject=None,
        artifact_type="application/vnd.oci.image.config.v1+json",
        annotations={"k": "v"},
        actor="alice",
        client="10.0.0.1",
    )
    fields.update(overrides)
    return fields


# -- ids ------------------------------------------------------------------------------------
def test_ids_are_natural_and_distinct() -> None:
    assert Repository.create_id("r") == Repository.create_id("r") == aggregate_id("repo", "r")
    ids = {
        Repository.create_id("r"),
        Repository.create_id("s"),
        Tag.create_id("r", "t"),
        Tag.create_id("s", "t"),
        Manifest.create_id("r", A),
        BlobLink.create_id("r", A),
        Manifest.create_id("r", B),
    }
    assert len(ids) == 7 and all(isinstance(i, UUID) and i.version == 5 for i in ids)
    assert Tag.create("r", "t", A, *WHO).id == Tag.create_id("r", "t")


# -- repository -----------------------------------------------------------------------------
def test_repository_created_deleted_recreated() -> None:
    repo = Repository.create("team/app", *WHO)
    assert repo.alive and repo.name == "team/app"
    repo.delete("bob", "10.0.0.2")
    assert not repo.alive
    repo.recreate("carol", "10.0.0.3")
    assert repo.alive
    events = repo.collect_events()
    assert [type(e) for e in events] == [
        Repository.Created,
        Repository.Deleted,
        Repository.Recreated,
    ]
    assert [e.originator_version for e in events] == [1, 2, 3]
    # Outside Python, a re-creation is the same kind of event as a creation.
    assert [event_kind(e) for e in events] == [
        "repository.created",
        "repository.deleted",
        "repository.created",
    ]
    assert [(e.actor, e.client) for e in events] == [
        WHO,
        ("bob", "10.0.0.2"),
        ("carol", "10.0.0.3"),
    ]
    assert all(e.name == "team/app" for e in events)
    rebuilt = replay(events)
    assert rebuilt.alive and rebuilt.name == "team/app" and rebuilt.version == 3
    assert not replay(events[:2]).alive


# -- blob links -----------------------------------------------------------------------------
def test_blob_link_unlink_relink() -> None:
    link = BlobLink.create("r", A, 10, *WHO)
    link.unlink(*WHO)
    assert not link.linked
    link.relink(*WHO)
    assert link.linked
    events = link.collect_events()
    assert [type(e) for e in events] == [BlobLink.Linked, BlobLink.Unlinked, BlobLink.Relinked]
    assert [event_kind(e) for e in events] == ["blob.linked", "blob.unlinked", "blob.linked"]
    assert events[2].size == 10 and events[2].digest == A and events[2].repository == "r"
    assert replay(events).linked and not replay(events[:2]).linked


# -- manifests ------------------------------------------------------------------------------
def test_manifest_pushed_deleted_repushed() -> None:
    manifest = Manifest.create("r", A, **manifest_fields())
    manifest.delete(*WHO)
    assert not manifest.alive
    manifest.repush(**manifest_fields(subject=B, annotations={}))
    assert manifest.alive
    pushed, deleted, repushed = manifest.collect_events()
    assert type(pushed) is Manifest.Pushed and type(repushed) is Manifest.Repushed
    assert event_kind(pushed) == event_kind(repushed) == "manifest.pushed"
    assert event_kind(deleted) == "manifest.deleted"
    assert pushed.layers == manifest_fields()["layers"] and pushed.subject is None
    assert repushed.subject == B and repushed.digest == A and repushed.repository == "r"
    assert deleted.digest == A
    assert replay([pushed, deleted, repushed]).alive
    assert not replay([pushed, deleted]).alive


# -- tags -----------------------------------------------------------------------------------
def test_tag_moves_record_from_and_to() -> None:
    tag = Tag.create("r", "latest", A, *WHO)
    assert tag.digest == A
    tag.move(B, *WHO)
    tag.move(C, *WHO)
    tag.move(A, *WHO)
    events = tag.collect_events()
    assert [(e.from_digest, e.to_digest) for e in events] == [(None, A), (A, B), (B, C), (C, A)]
    assert [event_kind(e) for e in events] == ["tag.moved"] * 4
    assert all(e.tag == "latest" and e.repository == "r" for e in events)
    assert replay(events).digest == A


def test_tag_delete_and_recreate() -> None:
    tag = Tag.create("r", "v1", A, *WHO)
    tag.delete(*WHO)
    assert tag.digest is None
    tag.move(B, *WHO)  # a push after the delete moves the tag from nothing
    events = tag.collect_events()
    assert [type(e) for e in events] == [Tag.Created, Tag.Deleted, Tag.Moved]
    assert events[1].from_digest == A and event_kind(events[1]) == "tag.deleted"
    assert (events[2].from_digest, events[2].to_digest) == (None, B)
    assert replay(events).digest == B
    assert replay(events[:2]).digest is None


@given(st.lists(st.sampled_from([A, B, C, None]), max_size=30))
def test_tag_state_follows_any_sequence(steps: list[str | None]) -> None:
    """Rebuilding from the events always yields the state the aggregate had."""
    tag = Tag.create("r", "t", A, *WHO)
    expected: str | None = A
    for step in steps:
        if step is None:
            if tag.digest is not None:
                tag.delete(*WHO)
                expected = None
        elif step != tag.digest:
            tag.move(step, *WHO)
            expected = step
        assert tag.digest == expected
    events = tag.collect_events()
    assert replay(events).digest == expected
    for before, after in zip(events, events[1:], strict=False):
        assert after.from_digest == getattr(before, "to_digest", None)
        assert after.originator_version == before.originator_version + 1


# -- documents (what the history view and the relay see) ------------------------------------
def test_event_documents() -> None:
    tag = Tag.create("r", "t", A, *WHO)
    tag.move(B, *WHO)
    moved = tag.collect_events()[-1]
    doc = event_document(moved, 42)
    assert doc["type"] == "tag.moved" and doc["position"] == 42 and doc["version"] == 2
    assert doc["aggregate_id"] == str(Tag.create_id("r", "t"))
    assert datetime.fromisoformat(doc["timestamp"]) == moved.timestamp
    assert {k: doc[k] for k in ("repository", "tag", "from_digest", "to_digest")} == {
        "repository": "r",
        "tag": "t",
        "from_digest": A,
        "to_digest": B,
    }
    assert "originator_id" not in event_fields(moved)
    created = Tag.create("r", "t", A, *WHO).collect_events()[0]
    assert "originator_topic" not in event_fields(created)


# -- transcoder -----------------------------------------------------------------------------
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.floats(allow_nan=False)
        | st.text()
        | st.binary()
        | st.datetimes(timezones=st.just(UTC)),
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=10), children, max_size=5)
        ),
        max_leaves=25,
    )
)
def test_transcoder_round_trip(value: Any) -> None:
    transcoder = MsgpackTranscoder()
    assert transcoder.decode(transcoder.encode(value)) == value


def test_transcoder_keeps_aware_datetimes() -> None:
    transcoder = MsgpackTranscoder()
    now = datetime.now(tz=UTC)
    back = transcoder.decode(transcoder.encode({"at": now}))["at"]
    assert back == now and back.tzinfo is not None and back.microsecond == now.microsecond
    # Other offsets come back as the same instant.
    plus2 = now.astimezone(timezone(timedelta(hours=2)))
    assert transcoder.decode(transcoder.encode(plus2)) == now


@pytest.fixture
def app() -> Registry:
    """The registry on in-memory persistence: its real mapper with the msgpack transcoder."""
    return Registry(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def _all_kinds_of_events() -> list[Any]:
    repo = Repository.create("r", *WHO)
    repo.delete(*WHO)
    repo.recreate(*WHO)
    link = BlobLink.create("r", A, 10, *WHO)
    link.unlink(*WHO)
    link.relink(*WHO)
    manifest = Manifest.create("r", A, **manifest_fields(subject=B))
    manifest.delete(*WHO)
    manifest.repush(**manifest_fields(config=None, manifests=[{"platform": {"os": "linux"}}]))
    tag = Tag.create("r", "t", A, *WHO)
    tag.move(B, *WHO)
    tag.delete(*WHO)
    return [*repo.collect_events(), *link.collect_events(), *manifest.collect_events()] + [
        *tag.collect_events()
    ]


def test_events_decode_back_equal(app: Registry) -> None:
    events = _all_kinds_of_events()
    assert len({type(e) for e in events}) == 12
    for event in events:
        stored = app.mapper.to_stored_event(event)
        assert isinstance(stored.state, bytes)
        back = app.mapper.to_domain_event(stored)
        assert type(back) is type(event)
        assert back == event
        assert vars(back) == vars(event)
        assert back.timestamp.tzinfo is not None
        assert isinstance(back.originator_id, UUID)


def test_msgpack_is_smaller_than_json(app: Registry) -> None:
    import json

    for event in _all_kinds_of_events():
        stored = app.mapper.to_stored_event(event)
        state = {
            k: v for k, v in vars(event).items() if k not in ("originator_id", "originator_version")
        }
        state["timestamp"] = event.timestamp.isoformat()
        as_json = json.dumps(state)
        assert len(stored.state) < len(as_json)


def test_snapshots_round_trip(app: Registry) -> None:
    tag = Tag.create("r", "t", A, *WHO)
    tag.move(B, *WHO)
    snapshot = Snapshot.take(tag)
    back = app.mapper.to_domain_event(app.mapper.to_stored_event(snapshot))
    restored = back.mutate(None)
    assert restored.id == tag.id and isinstance(restored.id, UUID)
    assert (restored.version, restored.digest, restored.tag) == (2, B, "t")
    assert restored.created_on == tag.created_on and restored.modified_on == tag.modified_on


# -- commands on in-memory persistence -----------------------------------------------------
def info(subject: str | None = None) -> ManifestInfo:
    f = manifest_fields(subject=subject)
    return ManifestInfo(
        media_type=f["media_type"],
        config=f["config"],
        layers=f["layers"],
        manifests=[],
        subject=subject,
        artifact_type=f["artifact_type"],
        annotations=f["annotations"],
    )


def kinds(app: Registry, after: int = 0) -> list[str]:
    return [
        event_kind(app.mapper.to_domain_event(n))
        for n in app.recorder.select_notifications(after + 1, 1000)
    ]


def test_commands_emit_events_once(app: Registry) -> None:
    who = Caller(*WHO)
    assert app.link_blob("r", C, 3, who) is not None
    assert app.link_blob("r", C, 3, who) is None  # idempotent repeat: nothing stored
    p1 = app.push_manifest("r", A, 10, info(), "latest", who)
    assert app.push_manifest("r", A, 10, info(), "latest", who) is None
    # the first push into a namespace that does not exist yet (`library`) creates it
    assert kinds(app) == [
        "namespace.created",
        "repository.created",
        "blob.linked",
        "manifest.pushed",
        "tag.moved",
    ]
    p2 = app.push_manifest("r", B, 10, info(subject=A), "latest", who)
    assert p2 > p1
    assert kinds(app, p1) == ["manifest.pushed", "tag.moved"]
    assert app.tag_digest("r", "latest") == B
    assert app.manifest_exists("r", A) and app.blob_linked("r", C)
    head = app.recorder.max_notification_id()
    app.link_blob("other", C, 3, who)  # the namespace exists now
    assert kinds(app, head) == ["repository.created", "blob.linked"]


def test_delete_and_recreate_through_commands(app: Registry) -> None:
    app.link_blob("r", C, 3, SYSTEM)
    app.push_manifest("r", A, 10, info(), "v1", SYSTEM)
    app.push_manifest("r", B, 10, info(), "v2", SYSTEM)
    app.delete_manifest("r", A, ["v1", "v2"], SYSTEM)  # v2 points elsewhere: kept
    assert not app.manifest_exists("r", A)
    assert app.tag_digest("r", "v1") is None and app.tag_digest("r", "v2") == B
    with pytest.raises(RegistryError) as err:
        app.delete_manifest("r", A, [], SYSTEM)
    assert err.value.code == "MANIFEST_UNKNOWN"
    app.delete_tag("r", "v2", SYSTEM)
    with pytest.raises(RegistryError):
        app.delete_tag("r", "v2", SYSTEM)
    head = app.recorder.max_notification_id()
    app.delete_repository("r", [], [B], [C], SYSTEM)
    assert kinds(app, head) == ["manifest.deleted", "blob.unlinked", "repository.deleted"]
    with pytest.raises(RegistryError) as err:
        app.delete_repository("r", [], [], [], SYSTEM)
    assert err.value.code == "NAME_UNKNOWN"
    with pytest.raises(RegistryError) as err:
        app.unlink_blob("r", C, SYSTEM)
    assert err.value.code == "BLOB_UNKNOWN"
    head = app.recorder.max_notification_id()
    app.push_manifest("r", A, 10, info(), "v1", SYSTEM)  # re-create everything
    assert kinds(app, head) == ["repository.created", "manifest.pushed", "tag.moved"]
    assert [type(e) for e in app.repository.get(Repository.create_id("r")).collect_events()] == []
    assert app.manifest_exists("r", A) and app.tag_digest("r", "v1") == A


def test_repush_of_a_deleted_manifest_restores_its_tag(app: Registry) -> None:
    """A tag whose manifest was deleted without the tag in the list (a lagging view) must
    come back when the manifest is pushed again with that tag."""
    app.push_manifest("r", A, 10, info(), "t", SYSTEM)
    app.delete_manifest("r", A, [], SYSTEM)  # the view did not know of "t" yet
    head = app.recorder.max_notification_id()
    app.push_manifest("r", A, 10, info(), "t", SYSTEM)
    assert kinds(app, head) == ["manifest.pushed", "tag.moved"]
    assert app.tag_digest("r", "t") == A


def test_bounded_documents_leave_out_their_largest_fields_first() -> None:
    doc = {"type": "t", "position": 7, "small": "s", "mid": ["m"] * 40, "big": {"b": "x" * 900}}
    assert bounded(doc, 10_000) == (doc, msgspec.json.encode(doc))
    fitted = bounded(doc, 400, keep=("type", "position"))
    assert fitted is not None and len(fitted.json) <= 400
    assert json.loads(fitted.json) == fitted.document
    raw = msgspec.json.encode(doc["big"])
    assert fitted.document == {
        "type": "t",
        "position": 7,
        "small": "s",
        "mid": ["m"] * 40,
        "truncated": True,
        "omitted": {
            "big": {
                "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
                "size": len(raw),
                "count": 1,
            }
        },
    }
    tight = bounded(doc, 300, keep=("type", "position"))
    assert tight is not None and set(tight.document["omitted"]) == {"big", "mid"}
    assert tight.document["small"] == "s" and len(tight.json) <= 300
    assert bounded({"type": "t" * 200}, 100, keep=("type",)) is None  # never fits
