"""/api/images and /api/repositories on the real stack: lists, keyset pagination, sorting,
search, details (layers, config, platforms, referrers), deletes, permission filtering (a
user never sees another's private repositories), 404s and bad input in the envelope."""

from __future__ import annotations

import psycopg
import pytest

from projections import keyset
from tests.apiclient import call, refused
from tests.images import push_image
from tests.world import BASE, CREATED, LABELS, SIGNATURE_TYPE, World, build

IMAGES = "/api/images"
REPOS = "/api/repositories"


@pytest.fixture(scope="module")
def world(module_registry) -> World:
    return build(module_registry)


def _data(answer):
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    return body["data"]


def _get(world: World, path: str, token: str | None = None, **params):
    return _data(call(world.url, "GET", path, token or world.admin, params=params))


def _walk(world: World, path: str, token: str | None = None, **params) -> list[dict]:
    """Every item of a listing, a page at a time, following next_cursor."""
    items, cursor, pages = [], None, 0
    while True:
        page = _get(world, path, token, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert pages < 100


def _key(item: dict) -> str:
    return f"{item['repository']}:{item['tag']}"


def test_list_shows_every_tagged_image_with_its_size(world: World) -> None:
    page = _get(world, IMAGES, limit=500)
    found = {_key(item): item for item in page["items"]}
    assert page["total"] == len(found) == len(world.digests) and page["total_exact"]
    assert page["next_cursor"] is None
    for key, digest in world.digests.items():
        item = found[key]
        assert item["digest"] == digest
        assert item["size"] == world.sizes[key], key
        assert item["namespace"] == (key.split("/")[0] if "/" in key else "library")
    frontend = found["team/web/frontend:1.0"]
    assert frontend["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert frontend["updated_by"] == "admin" and frontend["updated_at"].endswith("Z")
    assert found["bob/secret:1"]["updated_by"] == "bob"
    assert found["team/multi:1.0"]["media_type"] == "application/vnd.oci.image.index.v1+json"


@pytest.mark.parametrize(
    "sort,order",
    [("name", None), ("name", "desc"), ("updated", None), ("updated", "asc"), ("size", None)],
)
def test_pages_of_one_walk_everything_once_in_order(world: World, sort, order) -> None:
    params = {"sort": sort, "limit": 1, **({"order": order} if order else {})}
    walked = _walk(world, IMAGES, **params)
    everything = _get(world, IMAGES, limit=500, sort=sort, **({"order": order} if order else {}))
    assert walked == everything["items"]
    assert len({_key(i) for i in walked}) == len(walked) == everything["total"]
    column = {"name": None, "updated": "updated_at", "size": "size"}[sort]
    keys = [((i[column],) if column else ()) + (i["repository"], i["tag"]) for i in walked]
    descending = (order or {"name": "asc"}.get(sort, "desc")) == "desc"
    assert keys == sorted(keys, reverse=descending)


def test_page_edges(world: World) -> None:
    total = _get(world, IMAGES)["total"]
    exact = _get(world, IMAGES, limit=total)
    assert len(exact["items"]) == total and exact["next_cursor"] is None
    short = _get(world, IMAGES, limit=total - 1)
    assert len(short["items"]) == total - 1 and short["next_cursor"]
    last = _get(world, IMAGES, limit=total - 1, cursor=short["next_cursor"])
    assert len(last["items"]) == 1 and last["next_cursor"] is None
    assert last["items"][0] == exact["items"][-1]
    # a cursor belongs to its sort and order
    for params in ({"sort": "size"}, {"order": "desc"}):
        answer = call(
            world.url, "GET", IMAGES, world.admin, params={"cursor": short["next_cursor"], **params}
        )
        refused(answer, 400, "INVALID_INPUT")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"sort": "colour"},
        {"order": "up"},
        {"cursor": "not-a-cursor"},
        {"cursor": "W10"},  # base64 of []
        {"cursor": "WyJuYW1lIiwiYXNjIiwxXQ"},  # ["name","asc",1]: wrong type
    ],
)
def test_bad_list_parameters_are_400(world: World, params) -> None:
    refused(call(world.url, "GET", IMAGES, world.admin, params=params), 400, "INVALID_INPUT")
    if "sort" not in params or params["sort"] == "colour":
        refused(call(world.url, "GET", REPOS, world.admin, params=params), 400, "INVALID_INPUT")


def test_namespace_filter(world: World) -> None:
    team = _get(world, IMAGES, namespace="team", limit=500)
    assert {i["repository"] for i in team["items"]} == {"team/web/frontend", "team/multi"}
    assert team["total"] == len(team["items"])
    library = _get(world, IMAGES, namespace="library")
    assert [_key(i) for i in library["items"]] == ["myapp:latest"]
    assert _get(world, IMAGES, namespace="nobody")["items"] == []


def test_search_is_a_case_insensitive_substring_of_repository_and_tag(world: World) -> None:
    def found(q: str, token: str | None = None, **params) -> list[str]:
        return [_key(i) for i in _walk(world, f"{IMAGES}/search", token, q=q, **params)]

    assert found("FRONT") == [k for k in sorted(world.digests) if k.startswith("team/web/frontend")]
    assert found("LaTeSt") == ["myapp:latest", "team/web/frontend:latest"]
    assert found("web/frontend:1.") == ["team/web/frontend:1.0", "team/web/frontend:1.1"]
    assert found(".sig") == [
        f"team/web/frontend:{world.digests['team/web/frontend:1.0'].replace(':', '-')}.sig"
    ]
    assert found("%") == [] and found("_") == [] and found("zzz-nothing") == []
    assert found("latest", namespace="library") == ["myapp:latest"]
    assert found("e", limit=2, sort="size")  # paginated like the list
    for params in ({}, {"q": ""}, {"q": "x" * 256}, {"q": "x", "limit": 0}):
        answer = call(world.url, "GET", f"{IMAGES}/search", world.admin, params=params)
        refused(answer, 400, "INVALID_INPUT")


def test_search_pages_alike_with_and_without_the_trigram_index(module_registry, world) -> None:
    terms = ["front", "latest", "e", "1", ".", "zzz"]

    def everything(q: str) -> list[str]:
        return [_key(i) for i in _walk(world, f"{IMAGES}/search", q=q, limit=2)]

    def beyond_the_end(q: str) -> dict:
        items = _get(world, f"{IMAGES}/search", q=q, limit=500)["items"]
        cursor = keyset.encode("name", "asc", [items[-1]["repository"], items[-1]["tag"]])
        return _get(world, f"{IMAGES}/search", q=q, cursor=cursor)

    with_index = {q: everything(q) for q in terms}
    assert beyond_the_end("front") == {
        "items": [],
        "total": 4,
        "total_exact": True,
        "next_cursor": None,
    }
    # the embedded Postgres has no pg_trgm: the same answers from a scan
    with psycopg.connect(module_registry.env["CYP_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS images_search_trgm")
    assert {q: everything(q) for q in terms} == with_index
    assert beyond_the_end("front")["total"] == 4


def test_details_of_a_slash_name(world: World) -> None:
    data = _get(world, f"{IMAGES}/team/web/frontend/1.0")
    digest = world.digests["team/web/frontend:1.0"]
    assert (data["repository"], data["tag"], data["digest"]) == ("team/web/frontend", "1.0", digest)
    assert data["namespace"] == "team"
    assert data["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert data["size"] == world.sizes["team/web/frontend:1.0"]
    assert data["created"] == CREATED and data["labels"] == LABELS
    assert (data["os"], data["architecture"]) == ("linux", "amd64")
    assert data["pushed_by"] == "admin" and data["pushed_at"].endswith("Z")
    assert [layer["size"] for layer in data["layers"]] == [len(BASE), len(b"frontend 1.0")]
    assert all(
        layer["media_type"].startswith("application/vnd.oci.image.layer")
        for layer in data["layers"]
    )
    assert data["config"]["media_type"] == "application/vnd.oci.image.config.v1+json"
    assert data["platforms"] == []
    assert data["pull_command"] == f"docker pull {world.url.split('://')[1]}/team/web/frontend:1.0"
    kinds = {(r["kind"], r["digest"], r["tag"]) for r in data["referrers"]}
    assert ("signature", world.referrer, None) in kinds
    cosign_tag = digest.replace(":", "-") + ".sig"
    assert ("signature", world.cosign, cosign_tag) in kinds
    signed = [r for r in data["referrers"] if r["tag"] is None][0]
    assert signed["artifact_type"] == SIGNATURE_TYPE


def test_details_of_a_multi_arch_index(world: World) -> None:
    data = _get(world, f"{IMAGES}/team/multi/1.0")
    assert data["media_type"] == "application/vnd.oci.image.index.v1+json"
    assert data["size"] == world.sizes["team/multi:1.0"]
    assert data["layers"] == [] and data["config"] is None
    platforms = data["platforms"]
    assert [(p["os"], p["architecture"]) for p in platforms] == [
        ("linux", "amd64"),
        ("linux", "arm64"),
    ]
    assert sum(p["size"] for p in platforms) + data["manifest_size"] == data["size"]
    for p in platforms:
        assert [layer["size"] for layer in p["layers"]] == [
            len(BASE),
            len(f"{p['architecture']} layer"),
        ]
    assert data["created"] == max(p["created"] for p in platforms) == "2024-05-01T00:00:00Z"


@pytest.mark.parametrize(
    "path,code",
    [
        ("/nothing/here", "NAME_UNKNOWN"),
        ("/team/web/frontend/9.9", "MANIFEST_UNKNOWN"),
        ("/team/web/frontend", "NAME_UNKNOWN"),  # no repository "team/web"
        ("/team/web/frontend/latest/x", "NAME_UNKNOWN"),
        ("/myapp", "NOT_FOUND"),  # no tag at all
        ("/UPPER/case", "NOT_FOUND"),
        ("/team/web/frontend/", "NAME_UNKNOWN"),  # the trailing slash is dropped
        ("/team/web/frontend/bad:tag", "NOT_FOUND"),
    ],
)
def test_unknown_images_are_404(world: World, path: str, code: str) -> None:
    for method in ("GET", "DELETE"):
        refused(call(world.url, method, IMAGES + path, world.admin), 404, code)


def test_everything_needs_a_token(world: World) -> None:
    for method, path in [
        ("GET", IMAGES),
        ("GET", f"{IMAGES}/search?q=a"),
        ("GET", f"{IMAGES}/myapp/latest"),
        ("DELETE", f"{IMAGES}/myapp/latest"),
        ("GET", REPOS),
        ("DELETE", f"{REPOS}/myapp"),
    ]:
        refused(call(world.url, method, path), 401, "UNAUTHORIZED")
        refused(call(world.url, method, path, "not.a.token"), 401, "UNAUTHORIZED")


def test_a_user_never_sees_another_users_private_repositories(world: World) -> None:
    seen = {_key(i) for i in _walk(world, IMAGES, world.alice, limit=2)}
    assert seen == {"alice/app:1", "shared/tool:1"}  # her own and the public namespace
    assert _get(world, IMAGES, world.alice)["total"] == 2
    assert {_key(i) for i in _walk(world, f"{IMAGES}/search", world.alice, q="secret")} == set()
    assert {_key(i) for i in _walk(world, f"{IMAGES}/search", world.alice, q="1")} == {
        "alice/app:1",
        "shared/tool:1",
    }
    assert _get(world, IMAGES, world.alice, namespace="bob") == {
        "items": [],
        "total": 0,
        "total_exact": True,
        "next_cursor": None,
    }
    # details and deletes of bob's answer as if nothing were there
    refused(call(world.url, "GET", f"{IMAGES}/bob/secret/1", world.alice), 404, "NAME_UNKNOWN")
    refused(call(world.url, "DELETE", f"{IMAGES}/bob/secret/1", world.alice), 404, "NAME_UNKNOWN")
    refused(call(world.url, "DELETE", f"{REPOS}/bob/secret", world.alice), 404, "NAME_UNKNOWN")
    refused(
        call(world.url, "GET", f"{IMAGES}/team/web/frontend/1.0", world.alice), 404, "NAME_UNKNOWN"
    )
    repos = {r["name"] for r in _walk(world, REPOS, world.alice, limit=1)}
    assert repos == {"alice/app", "shared/tool"}
    # a public namespace: readable, not deletable
    assert (
        _get(world, f"{IMAGES}/shared/tool/1", world.alice)["digest"]
        == world.digests["shared/tool:1"]
    )
    refused(call(world.url, "DELETE", f"{IMAGES}/shared/tool/1", world.alice), 403, "DENIED")
    refused(call(world.url, "DELETE", f"{REPOS}/shared/tool", world.alice), 403, "DENIED")
    # bob sees his own
    assert {_key(i) for i in _walk(world, IMAGES, world.bob)} == {
        "bob/secret:1",
        "bob/secret:2",
        "shared/tool:1",
    }


def test_repositories_list_counts_tags_and_sizes(world: World) -> None:
    repos = {r["name"]: r for r in _walk(world, REPOS, limit=2)}
    assert set(repos) == {
        "alice/app",
        "bob/secret",
        "myapp",
        "shared/tool",
        "team/multi",
        "team/web/frontend",
    }
    frontend = repos["team/web/frontend"]
    assert frontend["tag_count"] == 4 and frontend["namespace"] == "team"  # with the .sig tag
    assert repos["team/multi"]["tag_count"] == 1
    assert repos["myapp"]["size"] == world.sizes["myapp:latest"]
    assert frontend["last_push"] >= frontend["created_at"]
    by_update = _walk(world, REPOS, sort="updated", limit=1)
    stamps = [r["last_push"] for r in by_update]
    assert stamps == sorted(stamps, reverse=True) and len(by_update) == len(repos)
    assert [r["name"] for r in _get(world, REPOS, namespace="team")["items"]] == [
        "team/multi",
        "team/web/frontend",
    ]


def test_deleting_a_tag_keeps_a_manifest_that_another_tag_uses(
    module_registry, world: World
) -> None:
    url = world.url
    answer = _data(call(url, "DELETE", f"{IMAGES}/team/web/frontend/latest", world.admin))
    assert answer == {
        "repository": "team/web/frontend",
        "tag": "latest",
        "digest": world.digests["team/web/frontend:latest"],
        "manifest_deleted": False,  # 1.1 is the same manifest
    }
    refused(
        call(url, "GET", f"{IMAGES}/team/web/frontend/latest", world.admin), 404, "MANIFEST_UNKNOWN"
    )
    with module_registry.client() as client:
        assert client.get("/v2/team/web/frontend/manifests/1.1").status_code == 200
        assert client.get("/v2/team/web/frontend/manifests/latest").status_code == 404
    # the last tag of a manifest takes the manifest with it
    answer = _data(call(url, "DELETE", f"{IMAGES}/team/web/frontend/1.1", world.admin))
    assert answer["manifest_deleted"] is True
    with module_registry.client() as client:
        digest = world.digests["team/web/frontend:1.1"]
        assert client.get(f"/v2/team/web/frontend/manifests/{digest}").status_code == 404
    refused(
        call(url, "DELETE", f"{IMAGES}/team/web/frontend/1.1", world.admin), 404, "MANIFEST_UNKNOWN"
    )
    left = {_key(i) for i in _walk(world, IMAGES, namespace="team")}
    assert "team/web/frontend:1.0" in left and "team/web/frontend:1.1" not in left


def test_users_delete_their_own_images_and_repositories(module_registry, world: World) -> None:
    url = world.url
    with module_registry.client(("alice", world.passwords["alice"])) as client:
        push_image(client, "alice/tmp", "a", [BASE, b"tmp"])
        push_image(client, "alice/tmp", "b", [BASE, b"tmp b"])
    assert _data(call(url, "DELETE", f"{IMAGES}/alice/tmp/a", world.alice))["manifest_deleted"]
    gone = _data(call(url, "DELETE", f"{REPOS}/alice/tmp", world.alice))
    assert gone == {"name": "alice/tmp", "tags": 1, "manifests": 1, "blobs": 5}
    assert "alice/tmp" not in {r["name"] for r in _walk(world, REPOS, world.alice)}
    refused(call(url, "DELETE", f"{REPOS}/alice/tmp", world.alice), 404, "NAME_UNKNOWN")
    refused(call(url, "DELETE", f"{REPOS}/Not-A-Name", world.alice), 404, "NAME_UNKNOWN")
    with module_registry.client(("alice", world.passwords["alice"])) as client:
        assert client.get("/v2/alice/tmp/tags/list").status_code == 404
