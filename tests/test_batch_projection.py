"""Batches do not change the views: random command sequences (same keys changed again and
again: link, unlink and relink; a tag moved back and forth; a manifest deleted with its tags
and pushed again; a repository deleted and recreated; indexes of images pushed with them)
projected live, then replayed one event per batch, in batches of a random size, and all in
one batch, give the same rows — the runner's set-based statements (projections.batch) keep
the order of the log."""

from __future__ import annotations

from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import RegistryError
from domain.manifests import OCI_INDEX, OCI_MANIFEST, ManifestInfo
from domain.registry import Registry
from migrations import migrate
from tests.support import create_database, drop_database
from tests.test_replay import (
    WHO,
    image_info,
    layer_blob,
    referrer_info,
    sha,
    small_pool,
    snapshot,
)
from workers.projector import ProjectionRunner

REPOS = ["b/app", "lib"]  # two namespaces (`b` and `library`)
TAGS = ["latest", "v1"]  # few keys: the same ones change again and again
IMAGES = range(3)
REPO = st.integers(0, len(REPOS) - 1)
IMAGE = st.sampled_from(IMAGES)
TAG = st.sampled_from(TAGS)


def index_info(images: list[int]) -> tuple[str, ManifestInfo]:
    children = [
        {"mediaType": OCI_MANIFEST, "digest": image_info(i)[0], "size": 123} for i in images
    ]
    info = ManifestInfo(
        media_type=OCI_INDEX,
        config=None,
        layers=[],
        manifests=children,
        subject=None,
        artifact_type=None,
        annotations={},
    )
    return sha(f"index-{images}"), info


LINK = st.tuples(st.just("link"), REPO, st.integers(0, 2))
PUSH = st.tuples(st.just("push"), REPO, IMAGE, st.none() | TAG)  # a tag moves, or is created
COMMANDS = st.one_of(  # deletions rarer, so content builds up between them
    LINK,
    LINK,
    st.tuples(st.just("unlink"), REPO, st.integers(0, 2)),
    PUSH,
    PUSH,
    PUSH,
    st.tuples(st.just("index"), REPO, st.lists(IMAGE, min_size=1, max_size=2), st.none() | TAG),
    st.tuples(st.just("referrer"), REPO, IMAGE, IMAGE),
    st.tuples(st.just("untag"), REPO, TAG),
    st.tuples(st.just("delete"), REPO, IMAGE, st.booleans()),
    st.tuples(st.just("drop"), REPO),
)


def _rows(conn: psycopg.Connection[Any], sql: str, repository: str) -> list[str]:
    return [row[0] for row in conn.execute(sql, (repository,)).fetchall()]


def _push(app: Registry, repo: str, digest: str, info: ManifestInfo, tag: str | None) -> None:
    for blob in info.referenced_blobs():
        app.link_blob(repo, blob, 1, WHO)
    app.push_manifest(repo, digest, 123, info, tag, WHO)


def run(app: Registry, conn: psycopg.Connection[Any], command: tuple[Any, ...]) -> None:
    """One command as a client would send it, the lists of deletions read from the views."""
    what, repo = command[0], REPOS[command[1]]
    if what == "link":
        app.link_blob(repo, layer_blob(command[2]), 10 + command[2], WHO)
    elif what == "unlink":
        app.unlink_blob(repo, layer_blob(command[2]), WHO)
    elif what == "push":
        _push(app, repo, *image_info(command[2]), command[3])
    elif what == "index":
        for image in command[2]:  # its platforms first, as a client pushes them
            _push(app, repo, *image_info(image), None)
        _push(app, repo, *index_info(command[2]), command[3])
    elif what == "referrer":
        _push(app, repo, *referrer_info(command[2], command[3]), None)
    elif what == "untag":
        app.delete_tag(repo, command[2], WHO)
    elif what == "delete":
        digest = image_info(command[2])[0]
        sql = "SELECT tag FROM tags WHERE repository = %s AND digest = %s"
        tags = [] if command[3] else [r[0] for r in conn.execute(sql, (repo, digest))]
        app.delete_manifest(repo, digest, tags, WHO)
    else:
        where = "WHERE repository = %s ORDER BY 1"
        app.delete_repository(
            repo,
            _rows(conn, f"SELECT tag FROM tags {where}", repo),
            _rows(conn, f"SELECT digest FROM manifests {where}", repo),
            _rows(conn, f"SELECT digest FROM blob_links {where}", repo),
            WHO,
        )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(commands=st.lists(COMMANDS, min_size=10, max_size=40), size=st.integers(2, 9))
def test_batch_size_does_not_change_the_views(
    pg_admin_url: str, commands: list[tuple[Any, ...]], size: int
) -> None:
    url = create_database(pg_admin_url)  # each example its own log, replayed whole
    try:
        migrate(url)
        app = Registry(env=small_pool(url))
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                live, whole = ProjectionRunner(app, url), ProjectionRunner(app, url)
                for command in commands:
                    try:
                        run(app, conn, command)
                    except RegistryError:
                        pass  # unknown blob, tag, manifest or repository: nothing stored
                    while live.step(conn):
                        pass
                    # every prefix of the log in one batch: the most merged into one statement
                    expected = snapshot(conn)
                    whole.rebuild()
                    assert snapshot(conn) == expected, command
                for batch_size in (1, size):
                    ProjectionRunner(app, url, batch_size=batch_size).rebuild()
                    assert snapshot(conn) == expected, f"batches of {batch_size}"
        finally:
            app.close()
    finally:
        drop_database(pg_admin_url, url)
