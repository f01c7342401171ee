"""Pulls (issue 12): manifest GETs counted in memory and recorded as one event per repository
and flush, never one per GET; the pulls view and its queries; /api showing the counts.

- the tally and the batches alone (no I/O);
- the command and the flusher on real Postgres: one event per repository per flush, a flush
  tried again stored once, a repository deleted meanwhile, two replicas flushing the same
  repository at once, a flush while Postgres is down (counts kept, recorded once it is back);
- the view's queries (pulls per day, top repositories, by the namespaces one may read);
- the real server: GETs through the fast path and the handler counted, HEADs not, the last
  flush on a graceful stop, the periodic flush, and /api's `pull_count`/`last_pulled_at`.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from eventsourcing.utils import get_topic

from cyp_registry.wiring import eventsourcing_env
from domain.caller import SYSTEM, Caller
from domain.manifests import OCI_MANIFEST, ManifestInfo
from domain.pulls import MAX_REFERENCES, PullBatch, Pulls, PullTally
from domain.registry import Registry
from migrations import migrate
from projections import pulls
from tests.apiclient import call, token_of
from tests.auth import ADMIN
from tests.consistency import EVENTS_TABLE, assert_views_equal_replay, wait_views_current
from tests.images import push_image
from tests.support import OwnPostgres, registry_app, wait_until
from workers.projector import ProjectionRunner
from workers.pulls import PullFlusher

WHO = Caller("tester", "127.0.0.1")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def batch(repository: str, counts: dict[str, int], until: datetime = T0, **kw: Any) -> PullBatch:
    fields = dict(since=until - timedelta(seconds=10), replica="test:1", flush=uuid.uuid4().hex)
    fields.update(kw)
    return PullBatch(repository, counts, until=until, **fields)  # type: ignore[arg-type]


# -- no I/O -----------------------------------------------------------------------------------
def test_the_tally_counts_and_gives_back_what_a_flush_did_not_record() -> None:
    tally = PullTally(T0)
    for _ in range(3):
        tally.pulled("a/app", "latest")
    tally.pulled("a/app", DIGEST)
    tally.pulled("b", "v1")
    counts, starts, until = tally.take(T0 + timedelta(seconds=10))
    assert counts == {"a/app": {"latest": 3, DIGEST: 1}, "b": {"v1": 1}}
    assert starts == {"a/app": T0, "b": T0} and until == T0 + timedelta(seconds=10)
    assert tally.pending() == 0
    # a's counts come back; more arrive meanwhile: the next take has both, since a's start
    tally.restore("a/app", counts["a/app"], T0)
    tally.pulled("a/app", "latest")
    tally.pulled("b", "v1")
    assert tally.pending() == 6
    counts, starts, _ = tally.take(T0 + timedelta(seconds=20))
    assert counts == {"a/app": {"latest": 4, DIGEST: 1}, "b": {"v1": 1}}
    assert starts == {"a/app": T0, "b": T0 + timedelta(seconds=10)}


def test_a_batch_is_one_event_unless_it_names_very_many_references() -> None:
    small = batch("r", {"latest": 5, DIGEST: 2})
    assert list(small.parts()) == [({"latest": 5}, {DIGEST: 2})]
    many = batch("r", {f"t{i}": 1 for i in range(MAX_REFERENCES * 2 + 1)})
    parts = list(many.parts())
    assert [len(tags) for tags, _ in parts] == [MAX_REFERENCES, MAX_REFERENCES, 1]
    assert sum(n for tags, _ in parts for n in tags.values()) == many.total


def test_a_flush_tried_again_is_recorded_once() -> None:
    first = batch("r", {"latest": 2})
    pulls_ = Pulls.record(None, first, *SYSTEM)
    assert pulls_ is not None
    assert Pulls.record(pulls_, first, *SYSTEM) is None  # the same flush: nothing
    assert Pulls.record(pulls_, batch("r", {"latest": 1}), *SYSTEM) is pulls_
    events = pulls_.collect_events()
    assert [type(e) for e in events] == [Pulls.FirstCounted, Pulls.Counted]
    assert events[0].actor == "system" and events[0].replica == "test:1"


# -- the command and the flusher on real Postgres ---------------------------------------------
IMAGE = ManifestInfo(
    media_type=OCI_MANIFEST,
    config=None,
    layers=[],
    manifests=[],
    subject=None,
    artifact_type=None,
    annotations={},
)


@pytest.fixture
def app(database_url: str) -> Iterator[Registry]:
    with registry_app(database_url, 2, 2) as registry:
        yield registry


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def project(app: Registry, database_url: str, conn: psycopg.Connection[Any]) -> None:
    runner = ProjectionRunner(app, database_url)
    while runner.step(conn):
        pass


def pushed(app: Registry, *repositories: str) -> None:
    for repository in repositories:
        app.push_manifest(repository, DIGEST, 10, IMAGE, "latest", WHO)


def pull_events(app: Registry, repository: str) -> list[Any]:
    return list(app.events.get(Pulls.create_id(repository)))


def rows(conn: psycopg.Connection[Any], table: str) -> list[tuple[Any, ...]]:
    columns = {
        "pull_tags": "repository, tag, pull_count",
        "pull_repositories": "repository, pull_count",
        "pull_days": "day, repository, pull_count",
        "pull_namespace_days": "day, namespace, pull_count",
    }[table]
    return conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2").fetchall()


def test_a_flush_records_one_event_per_repository(app, conn, database_url) -> None:
    pushed(app, "org/app", "lib")
    tally = PullTally()
    flusher = PullFlusher(app, tally, 10, replica="here:1")
    for _ in range(40):
        tally.pulled("org/app", "latest")
    for _ in range(7):
        tally.pulled("org/app", DIGEST)
    tally.pulled("lib", "latest")
    assert asyncio.run(flusher.flush()) == 48
    assert asyncio.run(flusher.flush()) == 0  # nothing counted since: no event
    events = {r: pull_events(app, r) for r in ("org/app", "lib")}
    assert [len(found) for found in events.values()] == [1, 1]
    (event,) = events["org/app"]
    assert (event.tags, event.digests) == ({"latest": 40}, {DIGEST: 7})
    assert event.replica == "here:1" and event.actor == "system" and event.since < event.until

    for _ in range(2):
        tally.pulled("org/app", "latest")
    asyncio.run(flusher.flush())
    assert len(pull_events(app, "org/app")) == 2
    project(app, database_url, conn)
    assert rows(conn, "pull_tags") == [("lib", "latest", 1), ("org/app", "latest", 42)]
    assert rows(conn, "pull_repositories") == [("lib", 1), ("org/app", 49)]
    day = pulls.day_of(pull_events(app, "org/app")[-1].until)
    assert rows(conn, "pull_days") == [(day, "lib", 1), (day, "org/app", 49)]
    assert rows(conn, "pull_namespace_days") == [(day, "library", 1), (day, "org", 49)]
    (tag_seen,) = conn.execute(
        "SELECT last_pulled_at FROM pull_tags WHERE repository = 'org/app'"
    ).fetchone()
    assert tag_seen == pull_events(app, "org/app")[-1].until


def test_a_batch_stored_already_changes_nothing(app, conn, database_url) -> None:
    pushed(app, "r")
    once = batch("r", {"latest": 3})
    assert app.count_pulls([once], SYSTEM) is not None
    assert app.count_pulls([once], SYSTEM) is None  # e.g. its commit's answer was lost
    assert len(pull_events(app, "r")) == 1
    project(app, database_url, conn)
    assert rows(conn, "pull_repositories") == [("r", 3)]


def test_a_deleted_repository_takes_its_counts_along(app, conn, database_url) -> None:
    pushed(app, "gone/app", "gone/kept")
    app.count_pulls([batch("gone/app", {"latest": 5}), batch("gone/kept", {"latest": 1})], SYSTEM)
    project(app, database_url, conn)
    app.delete_repository("gone/app", ["latest"], [DIGEST], [], WHO)
    # pulls counted before the delete, flushed after: dropped with it
    assert app.count_pulls([batch("gone/app", {"latest": 2})], SYSTEM) is None
    project(app, database_url, conn)
    assert rows(conn, "pull_tags") == [("gone/kept", "latest", 1)]
    assert rows(conn, "pull_repositories") == [("gone/kept", 1)]
    assert [r[1:] for r in rows(conn, "pull_days")] == [("gone/kept", 1)]
    # the namespace's pulls per day are what happened: they stay
    assert [r[1:] for r in rows(conn, "pull_namespace_days")] == [("gone", 6)]
    # a new repository of that name starts from nothing
    pushed(app, "gone/app")
    app.count_pulls([batch("gone/app", {"latest": 1})], SYSTEM)
    project(app, database_url, conn)
    assert rows(conn, "pull_repositories") == [("gone/app", 1), ("gone/kept", 1)]
    live = {table: rows(conn, table) for table in pulls.tables}
    ProjectionRunner(app, database_url).rebuild()
    assert {table: rows(conn, table) for table in pulls.tables} == live


def test_two_replicas_flushing_one_repository_lose_nothing(app, database_url) -> None:
    pushed(app, "hot/app")
    other = Registry(env=app.env)  # a second replica: its own pool, its own cache
    flushes, errors = 30, []
    start = threading.Barrier(2)

    def replica(registry: Registry, name: str) -> None:
        try:
            start.wait()
            for _ in range(flushes):
                registry.count_pulls([batch("hot/app", {"latest": 1}, replica=name)], SYSTEM)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(r, n)) for r, n in ((app, "a"), (other, "b"))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        other.close()
    assert errors == []
    events = pull_events(app, "hot/app")
    assert len(events) == 2 * flushes
    assert [e.originator_version for e in events] == list(range(1, 2 * flushes + 1))
    assert sorted(e.replica for e in events) == ["a"] * flushes + ["b"] * flushes


def test_pulls_counted_while_postgres_is_down_are_recorded_once_it_is_back(
    own_postgres: OwnPostgres,
) -> None:
    url = own_postgres.url
    migrate(url)
    # (the server fails at once behind its gate, api.availability; this one waits for its
    # pool a little, ten times)
    env = {**eventsourcing_env(url), "POSTGRES_CONNECT_TIMEOUT": "1"}
    registry = Registry(env=env)
    try:
        pushed(registry, "down/app")
        tally = PullTally()
        flusher = PullFlusher(registry, tally, 10)
        for _ in range(5):
            tally.pulled("down/app", "latest")
        own_postgres.stop()
        try:
            assert asyncio.run(flusher.flush()) == 0
            assert flusher.pending() == 5  # kept as they were
        finally:
            own_postgres.restart()
        tally.pulled("down/app", "latest")  # more, meanwhile
        assert flusher.pending() == 6
        # the failed batch first (its id kept), then what came meanwhile: no pull twice
        assert wait_until(lambda: asyncio.run(flusher.flush()), timeout=30) == 5
        assert asyncio.run(flusher.flush()) == 1
        assert flusher.pending() == 0
        events = pull_events(registry, "down/app")
        assert [e.tags for e in events] == [{"latest": 5}, {"latest": 1}]
        with psycopg.connect(url, autocommit=True) as conn:
            project(registry, url, conn)
            assert rows(conn, "pull_repositories") == [("down/app", 6)]
    finally:
        registry.close()


# -- the view's queries -----------------------------------------------------------------------
def test_pulls_per_day_and_top_repositories(app, conn, database_url) -> None:
    today = date(2026, 12, 10)
    at = datetime(2026, 12, 10, 12, tzinfo=UTC)
    pushed(app, "acme/web", "acme/api", "other/db", "solo")
    for days_ago, counts in ((0, (5, 1, 0, 2)), (1, (1, 0, 9, 0)), (9, (0, 50, 0, 0))):
        batches = [
            batch(name, {"latest": n}, until=at - timedelta(days=days_ago))
            for name, n in zip(("acme/web", "acme/api", "other/db", "solo"), counts, strict=True)
            if n
        ]
        app.count_pulls(batches, SYSTEM)
    project(app, database_url, conn)

    async def ask(fn: Any, *args: Any, **kw: Any) -> Any:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
            return await fn(c, *args, **kw)

    week = asyncio.run(ask(pulls.per_day, 3, None, today))
    assert week == [(date(2026, 12, 8), 0), (date(2026, 12, 9), 10), (today, 8)]
    mine = asyncio.run(ask(pulls.per_day, 3, ["acme"], today))
    assert mine == [(date(2026, 12, 8), 0), (date(2026, 12, 9), 1), (today, 6)]

    def top(*args: Any, **kw: Any) -> list[tuple[str, int]]:
        return [tuple(r) for r in asyncio.run(ask(pulls.top_repositories, *args, **kw))]

    assert top(10, None) == [("acme/api", 51), ("other/db", 9), ("acme/web", 6), ("solo", 2)]
    assert top(2, None, days=2, today=today) == [("other/db", 9), ("acme/web", 6)]
    assert top(10, ["acme", "library"], days=2, today=today) == [
        ("acme/web", 6),
        ("solo", 2),
        ("acme/api", 1),
    ]
    assert top(10, []) == []
    app.delete_repository("other/db", ["latest"], [DIGEST], [], WHO)
    project(app, database_url, conn)
    assert top(2, None, days=2, today=today) == [("acme/web", 6), ("solo", 2)]
    # what happened stays in the days: other's pulls are still counted
    assert asyncio.run(ask(pulls.per_day, 3, None, today))[1] == (date(2026, 12, 9), 10)
    with_tags = asyncio.run(ask(pulls.of_tags, [("acme/web", "latest"), ("acme/web", "none")]))
    assert list(with_tags) == [("acme/web", "latest")]
    assert with_tags["acme/web", "latest"].pull_count == 6


# -- the real server ----------------------------------------------------------------------------
def pull_event_count(database_url: str) -> dict[str, int]:
    topics = [get_topic(Pulls.FirstCounted), get_topic(Pulls.Counted)]
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            f"SELECT originator_id, count(*) FROM {EVENTS_TABLE} WHERE topic = ANY(%s)"
            " GROUP BY originator_id",
            (topics,),
        ).fetchall()
    return {str(oid): n for oid, n in found}


def api(registry, path: str, **params: Any) -> Any:
    token = token_of(registry.url, *ADMIN)
    answer = call(registry.url, "GET", path, token, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_gets_are_counted_heads_are_not_and_a_stop_loses_none(
    registry_factory, database_url
) -> None:
    first = registry_factory(CYP_PULL_FLUSH_SECONDS="3600").start()  # only the stop flushes
    with first.client() as client:
        digest = push_image(client, "pulled/app", "v1")
        push_image(client, "pulled/app", "never", layers=[b"other"])
        push_image(client, "pulled/other", "v1")
        accept = {"Accept": OCI_MANIFEST}
        path = "/v2/pulled/app/manifests"
        for _ in range(5):  # the fast path
            assert client.get(f"{path}/v1", headers=accept).status_code == 200
        for _ in range(3):  # the handler (an odd query leaves the fast path)
            assert client.get(f"{path}/v1?via=handler", headers=accept).status_code == 200
        assert client.get(f"{path}/{digest}", headers=accept).status_code == 200
        assert client.get(f"{path}/{digest}?via=handler", headers=accept).status_code == 200
        for _ in range(4):  # HEADs both ways, and answers that are no 200: no pulls
            assert client.head(f"{path}/v1").status_code == 200
            assert client.head(f"{path}/v1?via=handler").status_code == 200
            assert client.get(f"{path}/missing").status_code == 404
            assert client.get(f"{path}/missing?via=handler").status_code == 404
        assert client.get("/v2/pulled/other/manifests/v1").status_code == 200
    assert pull_event_count(database_url) == {}  # nothing recorded yet: counted in memory
    first.stop()  # SIGTERM: uvicorn finishes, then the lifespan's last flush
    counts = pull_event_count(database_url)
    assert sorted(counts.values()) == [1, 1], counts  # one event per repository, not per GET
    assert set(counts) == {str(Pulls.create_id(r)) for r in ("pulled/app", "pulled/other")}
    wait_views_current(database_url, timeout=1)  # shown before its runner stopped

    second = registry_factory(CYP_PULL_FLUSH_SECONDS="3600").start()
    wait_views_current(database_url)
    images = {f"{i['repository']}:{i['tag']}": i for i in api(second, "/api/images")["items"]}
    assert images["pulled/app:v1"]["pull_count"] == 8  # by tag; the 2 by digest: the repo's
    assert images["pulled/app:v1"]["last_pulled_at"].endswith("Z")
    assert images["pulled/app:never"]["pull_count"] == 0
    assert images["pulled/app:never"]["last_pulled_at"] is None
    assert images["pulled/other:v1"]["pull_count"] == 1
    found = api(second, "/api/images/search", q="pulled/app:v")["items"]
    assert [(i["tag"], i["pull_count"]) for i in found] == [("v1", 8)]
    detail = api(second, "/api/images/pulled/app/v1")
    assert detail["pull_count"] == 8
    assert detail["last_pulled_at"] == images["pulled/app:v1"]["last_pulled_at"]
    assert api(second, "/api/images/pulled/app/never")["last_pulled_at"] is None
    repositories = {r["name"]: r for r in api(second, "/api/repositories")["items"]}
    assert repositories["pulled/app"]["pull_count"] == 10  # every GET, by tag or digest
    assert repositories["pulled/other"]["pull_count"] == 1
    second.stop()
    assert_views_equal_replay(database_url, second.data_dir)


def test_pulls_are_recorded_every_interval(registry_factory, database_url) -> None:
    registry = registry_factory(CYP_PULL_FLUSH_SECONDS="0.5").start()
    with registry.client() as client:
        push_image(client, "often/app", "v1")
        started = time.monotonic()
        for _ in range(30):
            answer = client.get("/v2/often/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert answer.status_code == 200
        pulling = time.monotonic() - started
    # recorded while it runs (no stop), and shown
    wait_until(lambda: api(registry, "/api/images")["items"][0]["pull_count"] == 30)
    (events,) = pull_event_count(database_url).values()
    assert 1 <= events <= int(pulling / 0.5) + 2 < 30, (events, pulling)


def test_the_flush_interval_is_checked(registry_factory) -> None:
    with pytest.raises(RuntimeError, match="CYP_PULL_FLUSH_SECONDS"):
        registry_factory(CYP_PULL_FLUSH_SECONDS="0").start(timeout=30)
