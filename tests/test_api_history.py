"""/api/history, /api/history/stream and /api/system/info on the real stack: the audit log
newest first with filters and cursor pagination, live events as Server-Sent Events, system
info — and a user sees only what concerns the namespaces they may read, or their own acts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.apiclient import call, refused, token_of
from tests.images import push_image
from tests.world import BASE, World, build

HISTORY = "/api/history"
STREAM = "/api/history/stream"


@pytest.fixture(scope="module")
def world(module_registry) -> World:
    return build(module_registry)


def _data(answer):
    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is True
    return answer.json()["data"]


def _walk(world: World, token: str, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = _data(call(world.url, "GET", HISTORY, token, params={**params, **extra}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_history_is_the_whole_log_newest_first(world: World) -> None:
    events = _walk(world, world.admin, limit=7)
    positions = [e["position"] for e in events]
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == len(events)
    assert (
        events
        == _data(call(world.url, "GET", HISTORY, world.admin, params={"limit": 500}))["items"]
    )
    kinds = {e["type"] for e in events}
    assert {"user.registered", "namespace.created", "blob.linked", "manifest.pushed"} <= kinds
    assert {"tag.moved", "tag.deleted", "login.succeeded"} <= kinds
    moved = next(e for e in events if e["type"] == "tag.moved" and e["tag"] == "1.0")
    assert moved["repository"] in ("team/web/frontend", "team/multi")
    assert moved["actor"] == "admin" and moved["client"] == "127.0.0.1"
    assert moved["digest"] and moved["occurred_at"].endswith("Z")
    assert "to_digest" in moved["details"]
    # namespace events name their namespace, not a repository
    created = next(
        e for e in events if e["type"] == "namespace.created" and e["namespace"] == "shared"
    )
    assert created["repository"] is None
    assert "$argon2" not in json.dumps(events)


def test_history_filters(world: World) -> None:
    def kinds(**params) -> list[dict]:
        return _walk(world, world.admin, **params)

    bob = kinds(actor="bob")
    assert bob and all(e["actor"] == "bob" for e in bob)
    pushed = kinds(type="manifest.pushed")
    assert pushed and all(e["type"] == "manifest.pushed" for e in pushed)
    frontend = kinds(repository="team/web/frontend")
    assert frontend and all(e["repository"] == "team/web/frontend" for e in frontend)
    team = kinds(namespace="team")
    assert {e["repository"] for e in team} == {"team/web/frontend", "team/multi", None}
    assert [e["type"] for e in team if e["repository"] is None] == ["namespace.created"]
    both = kinds(actor="bob", type="tag.moved")
    assert [e["tag"] for e in both] == ["2", "1"]
    assert kinds(actor="nobody-at-all") == []
    # time range: since is inclusive, until exclusive
    everything = kinds()
    middle = everything[len(everything) // 2]["occurred_at"]
    newer, older = kinds(since=middle), kinds(until=middle)
    assert newer and older and len(newer) + len(older) == len(everything)
    assert all(e["occurred_at"] >= middle for e in newer)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert kinds(since=future) == []


def test_a_tags_events_are_its_timeline(world: World) -> None:
    moves = _walk(world, world.admin, repository="team/web/frontend", tag="1.1", limit=1)
    assert moves and all(e["tag"] == "1.1" for e in moves)
    assert all(e["repository"] == "team/web/frontend" for e in moves)
    assert moves[-1]["type"] == "tag.moved" and moves[-1]["details"]["from_digest"] is None
    everything = _walk(world, world.admin, repository="team/web/frontend")
    assert moves == [e for e in everything if e["tag"] == "1.1"]
    # what a user may not read stays hidden through this filter too
    assert _walk(world, world.alice, repository="bob/secret", tag="1") == []
    assert _walk(world, world.bob, repository="bob/secret", tag="1")
    refused(
        call(world.url, "GET", HISTORY, world.admin, params={"tag": "1.1"}), 400, "INVALID_INPUT"
    )


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "abc"},
        {"cursor": "-1"},
        {"limit": 0},
        {"limit": 501},
        {"since": "yesterday"},
        {"since": "2024-01-01T00:00:00"},  # no time zone
        {"until": "2024-13-01T00:00:00Z"},
        {"actor": "x" * 256},
        {"repository": "a", "tag": "x" * 129},
    ],
)
def test_bad_history_parameters_are_400(world: World, params) -> None:
    refused(call(world.url, "GET", HISTORY, world.admin, params=params), 400, "INVALID_INPUT")


def test_users_see_their_namespaces_and_their_own_acts(world: World) -> None:
    events = _walk(world, world.alice, limit=50)
    assert events
    for event in events:
        assert event["namespace"] in ("alice", "shared") or event["actor"] == "alice", event
    assert not [e for e in events if e["namespace"] == "bob" or e["actor"] == "bob"]
    assert {e["repository"] for e in events if e["repository"]} == {"alice/app", "shared/tool"}
    assert _walk(world, world.alice, repository="bob/secret") == []
    assert _walk(world, world.alice, actor="bob") == []
    assert any(e["type"] == "login.succeeded" for e in events)  # her own sign-in
    refused(call(world.url, "GET", HISTORY), 401, "UNAUTHORIZED")


def _stream(world: World, token: str, **kw) -> httpx.Response:
    client = httpx.Client(base_url=world.url, timeout=httpx.Timeout(10, read=20))
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    request = client.build_request("GET", STREAM, headers=headers, **kw)
    response = client.send(request, stream=True)
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    return response


def _next_events(source: httpx.Response | Iterator[str], until) -> list[dict]:
    """Read messages (id + data) until `until(event)` holds for one; returns all read. To
    read on later, pass the same `response.iter_lines()` each time."""
    lines = source.iter_lines() if isinstance(source, httpx.Response) else source
    found, current_id = [], None
    for line in lines:
        if line.startswith("id:"):
            current_id = int(line[3:].strip())
        elif line.startswith("data:"):
            event = json.loads(line[5:].strip())
            assert event["position"] == current_id
            found.append(event)
            if until(event):
                return found
    raise AssertionError(f"the stream ended; read {found}")


def test_stream_delivers_new_events_live_and_resumes(module_registry, world: World) -> None:
    name = f"live-{uuid.uuid4().hex[:8]}"
    response = _stream(world, world.admin)
    try:
        created = call(
            world.url,
            "POST",
            "/api/users",
            world.admin,
            json={"username": name, "password": "live-password"},
        )
        assert created.status_code == 201
        events = _next_events(
            response,
            lambda e: e["type"] == "user.registered" and e["details"].get("username") == name,
        )
    finally:
        response.close()
    registered = events[-1]
    assert registered["actor"] == "admin"
    # resume from an earlier position: the events after it come at once, in order
    resumed = _stream(
        world, world.admin, headers={"Last-Event-ID": str(registered["position"] - 1)}
    )
    try:
        again = _next_events(resumed, lambda e: e["position"] >= registered["position"])
    finally:
        resumed.close()
    assert again[-1] == registered and len(again) == 1
    # filters apply to the stream too
    only = _stream(world, world.admin, params={"type": "tag.moved", "after": "0"})
    try:
        first = _next_events(only, lambda e: True)
    finally:
        only.close()
    assert first[0]["type"] == "tag.moved"


def test_a_users_stream_never_carries_another_users_private_events(
    module_registry, world: World
) -> None:
    response = _stream(world, world.alice)
    try:
        with module_registry.client(("bob", world.passwords["bob"])) as client:
            push_image(client, "bob/secret", "3", [BASE, b"bob secret 3"])
        with module_registry.client(("alice", world.passwords["alice"])) as client:
            push_image(client, "alice/app", "2", [BASE, b"alice app 2"])
        events = _next_events(response, lambda e: e["type"] == "tag.moved" and e["tag"] == "2")
    finally:
        response.close()
    assert events[-1]["repository"] == "alice/app"
    assert all(e["namespace"] != "bob" and e["actor"] != "bob" for e in events)
    refused(call(world.url, "GET", STREAM), 401, "UNAUTHORIZED")
    refused(
        call(world.url, "GET", STREAM, world.admin, params={"after": "x"}), 400, "INVALID_INPUT"
    )


# -- /api/system/info -------------------------------------------------------------------------
def test_system_info(world: World) -> None:
    info = _data(call(world.url, "GET", "/api/system/info", world.admin))
    assert info["version"] and info["uptime_seconds"] > 0 and info["started_at"].endswith("Z")
    assert info["status"] == "healthy"
    assert info["components"] == {"postgres": True, "nats": True, "storage": True}
    storage = info["storage"]
    assert storage["blobs"] > 0 and storage["bytes"] > 0
    # BASE is referenced by every image but stored once
    assert storage["saved_by_sharing"] >= len(BASE) * 5
    assert storage["referenced_bytes"] - storage["bytes"] == storage["saved_by_sharing"]
    namespaces = {n["namespace"]: n for n in storage["namespaces"]}
    assert {"alice", "bob", "library", "shared", "team"} <= set(namespaces)
    assert sum(n["bytes"] for n in namespaces.values()) >= storage["bytes"]
    assert storage["disk"]["total"] >= storage["disk"]["free"] > 0
    events = info["event_store"]
    assert events["head_position"] > 0 and events["bytes"] > 0
    views = {v["name"]: v for v in info["views"]}
    assert {"images", "storage", "history", "tags", "manifests"} <= set(views)
    assert all(v["lag"] >= 0 and v["position"] <= events["head_position"] for v in views.values())
    assert info["counts"]["repositories"] >= 6 and info["counts"]["tags"] >= 9


def test_system_info_shows_a_user_only_their_namespaces(world: World) -> None:
    info = _data(call(world.url, "GET", "/api/system/info", world.alice))
    assert {n["namespace"] for n in info["storage"]["namespaces"]} == {"alice", "shared"}
    assert info["counts"]["repositories"] == 2
    assert "bob" not in json.dumps(info)
    refused(call(world.url, "GET", "/api/system/info"), 401, "UNAUTHORIZED")


def test_a_stream_follows_changes_of_membership_and_ends_with_the_session(
    module_registry, world: World
) -> None:
    ns = f"tmp{uuid.uuid4().hex[:8]}"
    created = call(world.url, "POST", "/api/namespaces", world.admin, json={"name": ns})
    assert created.status_code == 201, created.text
    members = f"/api/namespaces/{ns}/members"
    added = call(
        world.url, "POST", members, world.admin, json={"username": "alice", "role": "reader"}
    )
    assert added.status_code == 201, added.text
    session = token_of(world.url, "alice", world.passwords["alice"])
    response = _stream(world, session)
    lines = response.iter_lines()
    try:
        with module_registry.client() as admin:
            push_image(admin, f"{ns}/app", "1", [BASE, f"{ns} 1".encode()])
        seen = _next_events(lines, lambda e: e["repository"] == f"{ns}/app" and e["tag"] == "1")
        assert seen[-1]["type"] == "tag.moved"
        removed = call(world.url, "DELETE", f"{members}/alice", world.admin)
        assert removed.status_code == 200, removed.text
        mark = f"mark-{uuid.uuid4().hex[:6]}"
        with module_registry.client() as admin:
            push_image(admin, f"{ns}/app", "2", [BASE, f"{ns} 2".encode()])
        with module_registry.client(("alice", world.passwords["alice"])) as client:
            push_image(client, "alice/app", mark, [BASE, mark.encode()])
        later = _next_events(lines, lambda e: e["tag"] == mark)
        assert all(e["namespace"] != ns for e in later), later
        # signed out: the stream ends at the next batch
        assert call(world.url, "POST", "/api/auth/logout", session).status_code == 200
        with module_registry.client() as admin:
            push_image(admin, f"{ns}/app", "3", [BASE, f"{ns} 3".encode()])
        with pytest.raises(AssertionError, match="the stream ended"):
            _next_events(lines, lambda e: True)
    finally:
        response.close()
