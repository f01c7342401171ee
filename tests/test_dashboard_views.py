"""The dashboard's counters on real Postgres: pushes per day and namespace (projections.
pushes) and the bytes each repository references (projections.storage), kept as the events
arrive — the same numbers a count over the log or the references gives, and a replay."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from domain.registry import Registry
from migrations import migrate
from projections import pushes, storage
from tests.test_replay import WHO, catch_up, image_info, layer_blob, small_pool
from workers.projector import ProjectionRunner


@pytest.fixture
def app(database_url: str) -> Iterator[Registry]:
    migrate(database_url)
    registry = Registry(env=small_pool(database_url))
    try:
        yield registry
    finally:
        registry.close()


def _query(database_url: str, fn: Any, *args: Any) -> Any:
    async def run() -> Any:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await fn(conn, *args)

    return asyncio.run(run())


def _push(app: Registry, repo: str, image: int, tag: str | None) -> None:
    digest, info = image_info(image)
    for blob in info.referenced_blobs():
        app.link_blob(repo, blob, 10, WHO)
    app.push_manifest(repo, digest, 123, info, tag, WHO)


def test_pushes_per_day_follow_the_log_and_go_with_their_namespace(
    app: Registry, database_url: str
) -> None:
    runner = ProjectionRunner(app, database_url)
    app.register_user("olga", "password-1", "user", WHO)
    app.create_namespace("team", "olga", False, WHO)
    _push(app, "team/app", 0, "1.0")  # a manifest and a tag
    _push(app, "team/app", 1, "1.0")  # a manifest, the tag moved
    _push(app, "team/app", 2, None)  # a manifest by digest only
    _push(app, "olga/tool", 0, "latest")
    with psycopg.connect(database_url, autocommit=True) as conn:
        catch_up(runner, conn)
    today = datetime.now(UTC).date()
    week = _query(database_url, pushes.per_day, 7, None)
    assert [d.day for d in week] == [today - timedelta(days=6 - i) for i in range(7)]
    assert week[:-1] == [pushes.PushDay(d.day, 0, 0) for d in week[:-1]]
    assert week[-1] == pushes.PushDay(today, 3, 4)
    assert _query(database_url, pushes.per_day, 1, ["team"]) == [pushes.PushDay(today, 2, 3)]
    assert _query(database_url, pushes.per_day, 1, ["nobody"]) == [pushes.PushDay(today, 0, 0)]
    assert _query(database_url, pushes.per_day, 1, []) == [pushes.PushDay(today, 0, 0)]

    # A deleted repository's pushes happened: they stay. A deleted namespace's go with it,
    # and its name taken again starts afresh.
    app.delete_repository("team/app", ["1.0"], [image_info(i)[0] for i in range(3)], [], WHO)
    with psycopg.connect(database_url, autocommit=True) as conn:
        catch_up(runner, conn)
    assert _query(database_url, pushes.per_day, 1, ["team"]) == [pushes.PushDay(today, 2, 3)]
    app.delete_namespace("team", [], WHO)
    app.create_namespace("team", "olga", False, WHO)
    _push(app, "team/again", 3, "x")
    with psycopg.connect(database_url, autocommit=True) as conn:
        catch_up(runner, conn)
        live = conn.execute("SELECT * FROM push_days ORDER BY day, namespace").fetchall()
        assert _query(database_url, pushes.per_day, 1, ["team"]) == [pushes.PushDay(today, 1, 1)]
        assert _query(database_url, pushes.per_day, 1, None) == [pushes.PushDay(today, 2, 2)]
        assert runner.rebuild() > 0
        assert conn.execute("SELECT * FROM push_days ORDER BY day, namespace").fetchall() == live


def test_repository_sizes_are_kept_for_the_largest_first(app: Registry, database_url: str):
    runner = ProjectionRunner(app, database_url)
    _push(app, "a/small", 0, "1")
    _push(app, "b/big", 1, "1")
    _push(app, "b/big", 2, "2")
    app.link_blob("b/big", layer_blob(9), 1000, WHO)
    app.link_blob("c/gone", layer_blob(9), 5, WHO)
    with psycopg.connect(database_url, autocommit=True) as conn:
        catch_up(runner, conn)
    counted = _query(database_url, storage.repository_sizes, ["a/small", "b/big", "c/gone"])
    largest = _query(database_url, storage.largest_repositories, None, 10)
    assert largest == [
        storage.RepositorySize("b/big", counted["b/big"]),
        storage.RepositorySize("a/small", counted["a/small"]),
        storage.RepositorySize("c/gone", 5),
    ]
    assert counted["b/big"] > 1000 > counted["a/small"]
    assert _query(database_url, storage.largest_repositories, ["a", "c"], 1) == [largest[1]]
    assert _query(database_url, storage.largest_repositories, [], 10) == []

    app.unlink_blob("b/big", layer_blob(9), WHO)
    app.delete_repository("c/gone", [], [], [layer_blob(9)], WHO)
    with psycopg.connect(database_url, autocommit=True) as conn:
        catch_up(runner, conn)
        live = conn.execute("SELECT * FROM storage_repositories ORDER BY 1").fetchall()
        assert runner.rebuild() > 0
        assert conn.execute("SELECT * FROM storage_repositories ORDER BY 1").fetchall() == live
        # a database of before the counter gets it from the references
        conn.execute("TRUNCATE storage_repositories")
        conn.execute("DELETE FROM schema_migrations WHERE name = '015_dashboard.sql'")
        assert migrate(database_url) == ["015_dashboard.sql"]
        assert conn.execute("SELECT * FROM storage_repositories ORDER BY 1").fetchall() == live
    assert _query(database_url, storage.largest_repositories, None, 10) == [
        storage.RepositorySize("b/big", counted["b/big"] - 1000),
        storage.RepositorySize("a/small", counted["a/small"]),
    ]
