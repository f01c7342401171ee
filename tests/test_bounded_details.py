"""Bounded image details (issue 9, item 6): whatever a pusher lists, `GET /api/images/{name}/
{tag}` answers each distinct layer and platform once, at most a few of them with their counts,
and the rest a page at a time from `…/-/layers` and `…/-/platforms`; sizes count each
distinct blob once. The pathological index (one child listed 4,000 times, listing one blob
2,000 times: 1.2 MB of manifests) once answered 1.2 GB and took the server to 1.9 GB.

Also: the SQL that counts and pages distinct descriptors agrees with domain.manifests.distinct
(hypothesis, on Postgres), migration 012 corrects sizes projected before, and a /v2 push
naming one unknown blob thousands of times is refused naming it once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import psutil
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

import migrations
from domain.manifests import distinct
from projections import manifests
from tests.apiclient import call, refused, token_of
from tests.auth import ADMIN
from tests.images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    push_blob,
    put_manifest,
)
from tests.world import OCI_INDEX

IMAGES = "/api/images"
REPEATED_LAYER, REPEATED_CHILD = 2000, 4000
WIDE = 130  # distinct layers of one image: more than details show (100)
CHILDREN, CHILD_LAYERS = 23, 60  # more than details show (20 platforms, 50 layers each)


def _config(arch: str) -> bytes:
    return json.dumps(
        {"architecture": arch, "os": "linux", "created": f"2024-01-01T00:00:{len(arch):02}Z"}
    ).encode()


def _manifest(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
        }
    ).encode()


def _index(children: list[tuple[bytes, str]]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    **descriptor(OCI_MANIFEST, child),
                    "platform": {"os": "linux", "architecture": arch},
                }
                for child, arch in children
            ],
        }
    ).encode()


@dataclass
class Pushed:
    url: str
    token: str
    sizes: dict[str, int] = field(default_factory=dict)  # what each tag's size must be
    digests: dict[str, str] = field(default_factory=dict)
    blobs: list[str] = field(default_factory=list)  # the WIDE layers' digests, in order
    children: list[str] = field(default_factory=list)  # the platforms of bounded/many:index


@pytest.fixture(scope="module")
def pushed(module_registry) -> Pushed:
    world = Pushed(module_registry.url, token_of(module_registry.url, *ADMIN))
    with module_registry.client() as client:
        # one child listing one blob 2,000 times, and an index listing it 4,000 times
        repo, blob, config = "bounded/repeat", b"x", _config("amd64")
        push_blob(client, repo, blob)
        push_blob(client, repo, config)
        child = _manifest(config, [blob] * REPEATED_LAYER)
        index = _index([(child, "amd64")] * REPEATED_CHILD)
        assert len(child) + len(index) > 1_000_000
        put_manifest(client, repo, "child", child)
        put_manifest(client, repo, "index", index, OCI_INDEX)
        world.sizes["child"] = len(child) + len(config) + len(blob)
        world.sizes["index"] = len(index) + world.sizes["child"]
        world.digests.update(child=digest_of(child), index=digest_of(index))
        # more distinct layers and platforms than details show, each listed again
        repo, layers = "bounded/many", [f"layer {i}".encode() for i in range(WIDE)]
        for layer in layers:
            push_blob(client, repo, layer)
        world.blobs = [digest_of(layer) for layer in layers]
        config = _config("wide")
        push_blob(client, repo, config)
        wide = _manifest(config, layers + layers[::-1])
        put_manifest(client, repo, "wide", wide)
        world.sizes["wide"] = len(wide) + len(config) + sum(map(len, layers))
        children = []
        for i in range(CHILDREN):
            config = _config(f"arch{i}")
            push_blob(client, repo, config)
            child = _manifest(config, layers[:CHILD_LAYERS] * 2)
            put_manifest(client, repo, digest_of(child), child)
            children.append((child, f"arch{i}"))
        put_manifest(client, repo, "index", _index(children + children[::-1]), OCI_INDEX)
        world.children = [digest_of(child) for child, _ in children]
    return world


def _get(world: Pushed, path: str, **params) -> dict:
    answer = call(world.url, "GET", f"{IMAGES}/{path}", world.token, params=params)
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()["data"]


def _rss(pid: int) -> int:
    """Resident bytes of the registry: `serve` and any process it started."""
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


@contextlib.contextmanager
def _peak_rss(pid: int) -> Iterator[list[int]]:
    """[the registry's RSS before, its highest while the block runs] (sampled every 10 ms:
    the memory of an answer is freed once it is sent)."""
    found, done = [_rss(pid)], threading.Event()
    found.append(found[0])

    def sample() -> None:
        while not done.wait(0.01):
            found[1] = max(found[1], _rss(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        done.set()
        sampler.join()
        found[1] = max(found[1], _rss(pid))


def test_repeated_descriptors_answer_within_bounds(module_registry, pushed: Pushed) -> None:
    with _peak_rss(module_registry.proc.pid) as rss:
        started = time.monotonic()
        answer = httpx.get(
            f"{pushed.url}{IMAGES}/bounded/repeat/index",
            headers={"Authorization": f"Bearer {pushed.token}"},
            timeout=60,
        )
        elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text[:500]
    assert len(answer.content) < 100_000, len(answer.content)
    assert elapsed < 5, elapsed
    assert rss[1] - rss[0] < 100 * 2**20, rss
    data = answer.json()["data"]
    assert (data["platform_count"], len(data["platforms"])) == (1, 1)
    assert data["platforms_next_cursor"] is None
    assert data["layers"] == [] and data["layer_count"] == 0
    platform = data["platforms"][0]
    assert platform["digest"] == pushed.digests["child"]
    assert (platform["os"], platform["architecture"]) == ("linux", "amd64")
    assert platform["layers"] == [{"digest": digest_of(b"x"), "size": 1, "media_type": OCI_LAYER}]
    assert platform["layer_count"] == 1 and platform["layers_next_cursor"] is None
    # each distinct blob once: the child's size, and the index's with its one platform
    assert platform["size"] == pushed.sizes["child"]
    assert data["size"] == pushed.sizes["index"]
    child = _get(pushed, "bounded/repeat/child")
    assert child["size"] == pushed.sizes["child"]
    assert (child["layer_count"], len(child["layers"])) == (1, 1)
    # the pages say the same
    layers = _get(pushed, "bounded/repeat/index/-/layers", platform=pushed.digests["child"])
    assert (layers["layer_count"], len(layers["layers"]), layers["next_cursor"]) == (1, 1, None)
    platforms = _get(pushed, "bounded/repeat/index/-/platforms")
    assert platforms["platform_count"] == 1 and platforms["platforms"] == data["platforms"]
    listed = _get(pushed, "", namespace="bounded", limit=500)["items"]
    sizes = {f"{i['repository']}:{i['tag']}": i["size"] for i in listed}
    assert sizes["bounded/repeat:index"] == pushed.sizes["index"]
    assert sizes["bounded/repeat:child"] == pushed.sizes["child"]


def _walk(world: Pushed, path: str, items: str, **params) -> list[dict]:
    """Every item of a page sub-resource, following next_cursor."""
    found, cursor = [], None
    for _ in range(200):
        page = _get(world, path, **params, **({"cursor": cursor} if cursor else {}))
        found += page[items]
        cursor = page["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("the pages never ended")


def test_layers_beyond_the_cap_come_a_page_at_a_time(pushed: Pushed) -> None:
    data = _get(pushed, "bounded/many/wide")
    assert data["size"] == pushed.sizes["wide"]
    assert data["layer_count"] == WIDE
    assert [layer["digest"] for layer in data["layers"]] == pushed.blobs[:100]
    rest = _get(pushed, "bounded/many/wide/-/layers", cursor=data["layers_next_cursor"])
    assert rest["digest"] == data["digest"] and rest["layer_count"] == WIDE
    assert [layer["digest"] for layer in rest["layers"]] == pushed.blobs[100:]
    assert rest["next_cursor"] is None
    walked = _walk(pushed, "bounded/many/wide/-/layers", "layers", limit=7)
    assert [layer["digest"] for layer in walked] == pushed.blobs  # each once, first order
    assert walked == _get(pushed, "bounded/many/wide/-/layers", limit=500)["layers"]


def test_platforms_beyond_the_cap_come_a_page_at_a_time(pushed: Pushed) -> None:
    data = _get(pushed, "bounded/many/index")
    assert data["platform_count"] == CHILDREN
    shown = data["platforms"]
    assert [p["digest"] for p in shown] == pushed.children[:20]
    assert [p["architecture"] for p in shown] == [f"arch{i}" for i in range(20)]
    assert data["created"] == max(p["created"] for p in shown)
    for platform in shown:
        assert platform["layer_count"] == CHILD_LAYERS
        assert [layer["digest"] for layer in platform["layers"]] == pushed.blobs[:50]
        rest = _get(pushed, "bounded/many/index/-/layers", cursor=platform["layers_next_cursor"])
        assert rest["digest"] == platform["digest"]
        assert [layer["digest"] for layer in rest["layers"]] == pushed.blobs[50:CHILD_LAYERS]
    rest = _get(pushed, "bounded/many/index/-/platforms", cursor=data["platforms_next_cursor"])
    assert [p["digest"] for p in rest["platforms"]] == pushed.children[20:]
    assert rest["next_cursor"] is None and rest["platform_count"] == CHILDREN
    walked = _walk(pushed, "bounded/many/index/-/platforms", "platforms", limit=5)
    assert [p["digest"] for p in walked] == pushed.children
    assert walked[:20] == shown
    one = pushed.children[-1]
    layers = _walk(pushed, "bounded/many/index/-/layers", "layers", platform=one, limit=11)
    assert [layer["digest"] for layer in layers] == pushed.blobs[:CHILD_LAYERS]
    # an index has no layers of its own; an image no platforms
    assert _get(pushed, "bounded/many/index/-/layers")["layer_count"] == 0
    assert _get(pushed, "bounded/many/wide/-/platforms") == {
        "digest": _get(pushed, "bounded/many/wide")["digest"],
        "platforms": [],
        "platform_count": 0,
        "next_cursor": None,
    }


def test_bad_pages_are_refused(pushed: Pushed) -> None:
    def answer(path: str, token: str | None = pushed.token, **params) -> httpx.Response:
        return call(pushed.url, "GET", f"{IMAGES}/{path}", token, params=params)

    index = _get(pushed, "bounded/many/index")
    platforms_cursor = index["platforms_next_cursor"]
    layers_cursor = index["platforms"][0]["layers_next_cursor"]
    wide_cursor = _get(pushed, "bounded/many/wide")["layers_next_cursor"]
    unknown = "sha256:" + "0" * 64
    for path, params in [
        ("bounded/many/index/-/layers", {"cursor": "not-a-cursor"}),
        ("bounded/many/index/-/layers", {"cursor": platforms_cursor}),  # another kind
        ("bounded/many/index/-/platforms", {"cursor": layers_cursor}),
        ("bounded/many/index/-/layers", {"cursor": wide_cursor}),  # another image's
        ("bounded/repeat/index/-/platforms", {"cursor": platforms_cursor}),
        (
            "bounded/many/index/-/layers",
            {"cursor": layers_cursor, "platform": "sha256:" + "0" * 64},
        ),
        ("bounded/many/index/-/platforms", {"platform": pushed.children[0]}),
        ("bounded/many/index/-/layers", {"limit": 0}),
        ("bounded/many/index/-/layers", {"limit": 501}),
    ]:
        refused(answer(path, **params), 400, "INVALID_INPUT")
    refused(answer("bounded/many/index/-/nothing"), 404, "NOT_FOUND")
    refused(answer("bounded/many/index/-/"), 404, "NOT_FOUND")
    refused(answer("bounded/many/nothing/-/layers"), 404, "MANIFEST_UNKNOWN")
    refused(answer("bounded/nothing/index/-/layers"), 404, "NAME_UNKNOWN")
    refused(answer("bounded/many/index/-/layers", platform=unknown), 404, "MANIFEST_UNKNOWN")
    refused(answer("bounded/many/index/-/layers", None), 401, "UNAUTHORIZED")


def test_referrers_are_capped_with_their_count(module_registry, pushed: Pushed) -> None:
    repo, subject = "bounded/signed", _config("signed")
    empty = b"{}"
    with module_registry.client() as client:
        push_blob(client, repo, subject)
        push_blob(client, repo, empty)
        image = _manifest(subject, [])
        put_manifest(client, repo, "1", image)
        notes = {}
        for i in range(55):
            big = i == 0  # annotations above what details show of a referrer (32 KiB)
            annotations = {"n": str(i), **({"big": "x" * 40_000} if big else {})}
            body = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "artifactType": "application/vnd.example.sig",
                    "config": descriptor("application/vnd.oci.empty.v1+json", empty),
                    "layers": [],
                    "subject": descriptor(OCI_MANIFEST, image),
                    "annotations": annotations,
                }
            ).encode()
            put_manifest(client, repo, digest_of(body), body)
            notes[digest_of(body)] = {} if big else annotations
    data = _get(pushed, f"{repo}/1")
    assert data["referrer_count"] == 55 and len(data["referrers"]) == 50
    shown = [r["digest"] for r in data["referrers"]]
    assert shown == sorted(notes)[:50]
    assert all(r["annotations"] == notes[r["digest"]] for r in data["referrers"])
    assert all(r["kind"] == "signature" for r in data["referrers"])


def test_a_push_naming_an_unknown_blob_many_times_names_it_once(module_registry) -> None:
    config = _config("amd64")
    with module_registry.client() as client:
        push_blob(client, "bounded/unknown", config)
        body = _manifest(config, [b"never pushed"] * 5000)
        r = put_manifest(client, "bounded/unknown", "t", body, check=False)
    assert r.status_code == 404, r.text[:300]
    error = r.json()["errors"][0]
    assert error["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert error["detail"]["digests"] == [digest_of(b"never pushed")]


# -- the SQL of distinct descriptors agrees with domain.manifests.distinct ---------------------
@pytest.fixture(scope="module")
def views_database(pg_admin_url: str):
    from tests.support import create_database, drop_database

    url = create_database(pg_admin_url)
    migrations.migrate(url)
    yield url
    drop_database(pg_admin_url, url)


def _insert(conn, repository: str, digest: str, layers: list[dict], children: list[dict]) -> None:
    conn.execute(
        "INSERT INTO manifests (repository, digest, media_type, size, config, layers, children,"
        " annotations, pushed_at, pushed_by) VALUES (%s, %s, 'x', 1, NULL, %s, %s, '{}', %s, 'a')",
        (repository, digest, Jsonb(layers), Jsonb(children), datetime.now(UTC)),
    )


_listed = st.lists(
    st.builds(
        lambda n, size, arch: {
            "digest": f"sha256:{n:064x}",
            "size": size,
            "mediaType": "m" * (n % 3 + 1),
            "platform": {"os": "linux", "architecture": arch},
        },
        st.integers(0, 8),
        st.integers(0, 2**40),
        st.sampled_from(["amd64", "arm64", 7]),  # a non-string platform field answers None
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(listed=_listed, limit=st.integers(1, 10))
def test_distinct_pages_in_sql_match_the_domain(views_database, listed, limit) -> None:
    repository, digest = f"r{uuid.uuid4().hex[:8]}", "sha256:" + uuid.uuid4().hex * 2
    with psycopg.connect(views_database, autocommit=True) as conn:
        _insert(conn, repository, digest, listed, listed)
    expected = distinct(listed)

    async def pages():
        async with await psycopg.AsyncConnection.connect(views_database) as conn:
            summary = (await manifests.summaries(conn, repository, [digest]))[digest]
            layers, platforms, after = [], [], 0
            while page := (await manifests.layer_pages(conn, repository, [digest], after, limit))[
                digest
            ]:
                assert len(page) <= limit
                layers += page
                after = page[-1].position
            after = 0
            while page := await manifests.platform_page(conn, repository, digest, after, limit):
                platforms += page
                after = page[-1].position
            return summary, layers, platforms

    summary, layers, platforms = asyncio.run(pages())
    assert summary.layer_count == summary.platform_count == len(expected)
    as_layers = [(d["digest"], d["size"], d["mediaType"]) for d in expected]
    assert [(e.digest, e.size, e.media_type) for e in layers] == as_layers
    arch = [d["platform"]["architecture"] for d in expected]
    assert [e.architecture for e in platforms] == [a if isinstance(a, str) else None for a in arch]
    assert [e.digest for e in platforms] == [d["digest"] for d in expected]
    first = [next(i for i, x in enumerate(listed) if x is d) + 1 for d in expected]
    assert [e.position for e in layers] == first


def test_migration_012_corrects_sizes_projected_before(views_database) -> None:
    """Rows as the images view projected them before (each listed layer counted), then 012."""
    layer = {"digest": "sha256:" + "1" * 64, "size": 100, "mediaType": OCI_LAYER}
    config = {"digest": "sha256:" + "2" * 64, "size": 10, "mediaType": OCI_CONFIG}
    image, index = "sha256:" + "3" * 64, "sha256:" + "4" * 64
    repository = f"m{uuid.uuid4().hex[:8]}"
    with psycopg.connect(views_database, autocommit=True) as conn:
        _insert(conn, repository, image, [layer] * 5, [])
        conn.execute(
            "UPDATE manifests SET config = %s, size = 50 WHERE repository = %s AND digest = %s",
            (Jsonb(config), repository, image),
        )
        _insert(conn, repository, index, [], [{"digest": image}] * 3)  # size 1
        old_image, old_index = 50 + 10 + 5 * 100, 1 + 50 + 10 + 5 * 100
        for digest, size in ((image, old_image), (index, old_index)):
            conn.execute(
                "INSERT INTO image_manifests (repository, digest, media_type, size)"
                " VALUES (%s, %s, 'x', %s)",
                (repository, digest, size),
            )
            conn.execute(
                "INSERT INTO images (repository, tag, digest, media_type, size, updated_at,"
                " updated_by) VALUES (%s, %s, %s, 'x', %s, now(), 'a')",
                (repository, digest[-4:], digest, size),
            )
        conn.execute("DELETE FROM schema_migrations WHERE name = '012_distinct_sizes.sql'")
    assert migrations.migrate(views_database) == ["012_distinct_sizes.sql"]
    with psycopg.connect(views_database, autocommit=True) as conn:
        for table in ("image_manifests", "images"):
            rows = conn.execute(
                f"SELECT digest, size FROM {table} WHERE repository = %s", (repository,)
            ).fetchall()
            assert dict(rows) == {image: 50 + 10 + 100, index: 1 + 50 + 10 + 100}, table
