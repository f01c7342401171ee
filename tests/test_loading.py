"""Loading several aggregates in one round trip (domain/commands/loading.py) gives what
eventsourcing's `Repository.get` gives: for missing ones, cached ones another replica moved
on, and tags rebuilt from a snapshot plus later events."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from cyp_registry.wiring import eventsourcing_env
from domain.caller import Caller
from domain.content import BlobLink, Repository, Tag
from domain.registry import Registry
from migrations import migrate
from tests.test_replay import image_info, sha

WHO = Caller("loader", "127.0.0.1")


@pytest.fixture
def apps(database_url: str) -> Iterator[tuple[Registry, Registry]]:
    migrate(database_url)
    one, two = Registry(env=eventsourcing_env(database_url)), None
    try:
        two = Registry(env=eventsourcing_env(database_url))
        yield one, two
    finally:
        one.close()
        if two is not None:
            two.close()


def _state(aggregate) -> tuple:
    return None if aggregate is None else (aggregate.version, vars(aggregate))


def _fresh(app: Registry, cls: type, *key: str):
    """What eventsourcing's own repository answers, bypassing the cache."""
    try:
        return app.repository.get(cls.create_id(*key), version=None, deepcopy_from_cache=True)
    except Exception:  # AggregateNotFoundError
        return None


def test_one_query_loads_what_the_repository_loads(
    apps: tuple[Registry, Registry], database_url: str
) -> None:
    one, two = apps
    repo = "load/app"
    digest, info = image_info(1)
    one.link_blob(repo, sha("layer"), 5, WHO)
    one.push_manifest(repo, digest, 100, info, "latest", WHO)
    wanted = [
        (Repository, (repo,)),
        (BlobLink, (repo, sha("layer"))),
        (BlobLink, (repo, sha("never"))),  # missing
        (Tag, (repo, "latest")),
        (Repository, (repo,)),  # asked twice
    ]
    first = one._get_all(*wanted)  # noqa: SLF001 - the method under test
    assert first[2] is None
    assert _state(first[0]) == _state(first[4])
    # The other replica moves the tag 60 times (a snapshot at 50) and unlinks the blob.
    other_digest, other_info = image_info(2)
    for n in range(60):
        target = (other_digest, other_info) if n % 2 == 0 else (digest, info)
        two.push_manifest(repo, target[0], 100, target[1], "latest", WHO)
    two.unlink_blob(repo, sha("layer"), WHO)
    # `one` has them cached at their old versions: the load moves them on.
    again = one._get_all(*wanted)  # noqa: SLF001
    assert again[3].version == first[3].version + 60
    assert not again[1].linked
    for (cls, key), got in zip(wanted, again, strict=True):
        assert _state(got) == _state(_fresh(two, cls, *key))
    # A process that never saw the tag: latest snapshot (version 50) plus the events after it.
    with psycopg.connect(database_url) as conn:
        (snapshots,) = conn.execute("SELECT count(*) FROM registry_snapshots").fetchone()
    assert snapshots >= 1
    three = Registry(env=eventsourcing_env(database_url))
    try:
        (tag,) = three._get_all((Tag, (repo, "latest")))  # noqa: SLF001
        assert _state(tag) == _state(again[3])
    finally:
        three.close()
    # Copies: changing what was handed out changes nothing cached.
    again[3].digest = "sha256:" + "0" * 64
    assert one._get(Tag, repo, "latest").digest != again[3].digest  # noqa: SLF001
