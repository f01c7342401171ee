"""Replay on real Postgres: views rebuilt from position 0 equal the live views row for row;
domain invariants hold on the live views; the `replay` CLI; two writers on one hot tag."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from cyp_registry.wiring import eventsourcing_env
from domain.access_tokens import PERSONAL, ROBOT, new_personal_secret, robot_name
from domain.caller import SYSTEM, Caller
from domain.content import Tag
from domain.errors import RegistryError
from domain.manifests import OCI_MANIFEST, ManifestInfo
from domain.pulls import PullBatch
from domain.registry import Registry
from migrations import migrate
from projections.catalog import VIEWS
from tests.support import as_url, unique
from workers.projector import ProjectionRunner

# Every view table with its primary key: the order of a row-for-row comparison.
TABLES = {
    "repositories": "name",
    "manifests": "repository, digest",
    "tags": "repository, tag",
    "blob_links": "repository, digest",
    "referrers": "repository, subject, digest",
    "users": "name",
    "namespaces": "name",
    "namespace_members": "namespace, username",
    "access_tokens": "token_id",
    "revoked_tokens": "jti",
    "login_failures": "position",
    "history": "position",
    "images": "repository, tag",
    "image_manifests": "repository, digest",
    "storage_refs": "repository, kind, digest",
    "storage_blobs": "digest",
    "storage_namespace_blobs": "namespace, digest",
    "storage_namespaces": "namespace",
    "storage_totals": "id",
    "storage_repositories": "repository",
    "pull_tags": "repository, tag",
    "pull_repositories": "repository",
    "pull_days": "day, repository",
    "pull_namespace_days": "day, namespace",
    "view_positions": "view",
}
WHO = Caller("tester", "127.0.0.1")
ROLES = ("owner", "maintainer", "developer", "reader")


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def small_pool(database_url: str) -> dict[str, str]:
    """The registry's environment with few connections (the test server is shared)."""
    env = eventsourcing_env(database_url)
    env.update(POSTGRES_POOL_SIZE="2", POSTGRES_MAX_OVERFLOW="2")
    return env


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: conn.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
        for table, key in TABLES.items()
    }


@pytest.fixture
def app(database_url: str) -> Iterator[Registry]:
    migrate(database_url)
    registry = Registry(env=small_pool(database_url))
    try:
        yield registry
    finally:
        registry.close()


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def catch_up(runner: ProjectionRunner, conn: psycopg.Connection[Any]) -> None:
    while runner.step(conn):
        pass


# -- a small world of content-addressed manifests -------------------------------------------
CONFIG_BLOB = sha("config")


def layer_blob(i: int) -> str:
    return sha(f"layer-{i}")


def image_info(i: int) -> tuple[str, ManifestInfo]:
    """Image i: a config and one layer of its own."""
    info = ManifestInfo(
        media_type=OCI_MANIFEST,
        config={
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": CONFIG_BLOB,
            "size": 2,
        },
        layers=[
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_blob(i),
                "size": 10 + i,
            }
        ],
        manifests=[],
        subject=None,
        artifact_type="application/vnd.oci.image.config.v1+json",
        annotations={"n": str(i)},
    )
    return sha(f"image-{i}"), info


def referrer_info(i: int, subject: int) -> tuple[str, ManifestInfo]:
    """An artifact (signature, SBOM) about image `subject`."""
    _, base = image_info(i)
    info = ManifestInfo(
        media_type=OCI_MANIFEST,
        config=base.config,
        layers=base.layers,
        manifests=[],
        subject=image_info(subject)[0],
        artifact_type=f"application/vnd.example.kind{i}",
        annotations={"about": str(subject)},
    )
    return sha(f"referrer-{i}-{subject}"), info


IMAGES = range(4)
TAGS = ["latest", "v1", "v2", "stable"]
REPO = st.sampled_from([0, 1])


def _one(conn: psycopg.Connection[Any], sql: str, *params: Any) -> list[Any]:
    return [row[0] for row in conn.execute(sql, params).fetchall()]


def test_replay_equals_live(app: Registry, conn: psycopg.Connection[Any], database_url: str):
    runner = ProjectionRunner(app, database_url)

    class Machine(RuleBasedStateMachine):
        """Commands against a model of what clients should see; the live views must show
        exactly the model, and a replay must reproduce the live views."""

        def __init__(self) -> None:
            super().__init__()
            prefix = unique("p")  # each example has repositories of its own
            self.repos = [f"{prefix}/app", f"{prefix}/lib/base"]
            # identity: users (each with a personal namespace), organisations, members, tokens
            self.users = [f"{prefix}u{i}" for i in range(2)]
            self.orgs = [f"{prefix}o{i}" for i in range(2)]
            self.members: dict[str, dict[str, str]] = {}  # namespace -> user -> role
            self.tokens: dict[str, bool] = {}  # token id -> revoked
            self.live_repos: set[str] = set()
            self.manifests: dict[tuple[str, str], ManifestInfo] = {}
            self.tags: dict[tuple[str, str], str] = {}
            self.blobs: set[tuple[str, str]] = set()
            self.ever: dict[tuple[str, str], ManifestInfo] = {}  # every manifest once pushed
            self.former_tags: dict[tuple[str, str], set[str]] = {}  # tags lost by deletion
            # pulls recorded: per repository (by tag or digest) and per tag, until deleted
            self.pulls: dict[str, int] = {}
            self.tag_pulls: dict[tuple[str, str], int] = {}

        # -- commands ------------------------------------------------------------------------
        def _push(self, repo: str, digest: str, info: ManifestInfo, tag: str | None) -> None:
            for blob in info.referenced_blobs():  # a client uploads the blobs first
                app.link_blob(repo, blob, 1, WHO)
                self.blobs.add((repo, blob))
            app.push_manifest(repo, digest, 123, info, tag, WHO)
            self.live_repos.add(repo)
            self.manifests[repo, digest] = self.ever[repo, digest] = info
            if tag:
                self.tags[repo, tag] = digest
                assert app.tag_digest(repo, tag) == digest
            assert app.manifest_exists(repo, digest)

        @rule(repo=REPO, image=st.sampled_from(IMAGES), tag=st.none() | st.sampled_from(TAGS))
        def push_image(self, repo: int, image: int, tag: str | None) -> None:
            self._push(self.repos[repo], *image_info(image), tag)

        @rule(
            repo=REPO,
            image=st.sampled_from(IMAGES),
            subject=st.sampled_from(IMAGES),
            tag=st.none() | st.sampled_from(TAGS),
        )
        def push_referrer(self, repo: int, image: int, subject: int, tag: str | None) -> None:
            """An artifact about an image (which need not exist, as OCI allows)."""
            self._push(self.repos[repo], *referrer_info(image, subject), tag)

        @rule(data=st.data(), tag=st.sampled_from(TAGS))
        def move_tag(self, data: st.DataObject, tag: str) -> None:
            """Point a tag at a manifest its repository has (a no-op if it already does)."""
            if not self.manifests:
                return
            repo, digest = data.draw(st.sampled_from(sorted(self.manifests)))
            unchanged = self.tags.get((repo, tag)) == digest
            position = app.push_manifest(repo, digest, 123, self.manifests[repo, digest], tag, WHO)
            assert (position is None) == unchanged  # an idempotent repeat stores nothing
            self.tags[repo, tag] = digest

        @rule(data=st.data(), how=st.sampled_from(["untagged", "former tag", "any tag"]))
        def recreate_manifest(self, data: st.DataObject, how: str) -> None:
            """Push a deleted manifest again: without a tag, with a tag it had before its
            deletion, or with any tag."""
            dead = sorted(set(self.ever) - set(self.manifests))
            if not dead:
                return
            repo, digest = data.draw(st.sampled_from(dead))
            former = sorted(self.former_tags.get((repo, digest), ())) or [None]
            tag = {
                "untagged": None,
                "former tag": data.draw(st.sampled_from(former)),
                "any tag": data.draw(st.sampled_from(TAGS)),
            }[how]
            self._push(repo, digest, self.ever[repo, digest], tag)

        @rule(repo=REPO, blob=st.integers(0, 5))
        def link_blob(self, repo: int, blob: int) -> None:
            app.link_blob(self.repos[repo], layer_blob(blob), 10 + blob, WHO)
            self.live_repos.add(self.repos[repo])
            self.blobs.add((self.repos[repo], layer_blob(blob)))

        @rule(repo=REPO, blob=st.integers(0, 5))
        def unlink_blob(self, repo: int, blob: int) -> None:
            key = (self.repos[repo], layer_blob(blob))
            try:
                app.unlink_blob(*key, WHO)
            except RegistryError as exc:
                assert exc.code == "BLOB_UNKNOWN" and key not in self.blobs
            else:
                self.blobs.remove(key)

        @rule(repo=REPO, tag=st.sampled_from(TAGS))
        def delete_tag(self, repo: int, tag: str) -> None:
            key = (self.repos[repo], tag)
            try:
                app.delete_tag(*key, WHO)
            except RegistryError as exc:
                assert exc.code == "MANIFEST_UNKNOWN" and key not in self.tags
            else:
                del self.tags[key]
            assert app.tag_digest(*key) is None

        @rule(data=st.data(), stale=st.booleans())
        def delete_manifest(self, data: st.DataObject, stale: bool) -> None:
            """Delete with the tags the view lists or, stale, with none (a view that lags)."""
            if not self.ever:
                return
            repo, digest = data.draw(st.sampled_from(sorted(self.ever)))
            sql = "SELECT tag FROM tags WHERE repository = %s AND digest = %s"
            pointing = [] if stale else _one(conn, sql, repo, digest)
            try:
                app.delete_manifest(repo, digest, pointing, WHO)
            except RegistryError as exc:
                assert exc.code == "MANIFEST_UNKNOWN" and (repo, digest) not in self.manifests
            else:
                del self.manifests[repo, digest]
                # Deleting a manifest deletes the tags that point at it.
                lost = {t for (r, t), d in self.tags.items() if (r, d) == (repo, digest)}
                self.former_tags[repo, digest] = lost
                self.tags = {k: d for k, d in self.tags.items() if (k[0], d) != (repo, digest)}
            assert not app.manifest_exists(repo, digest)

        @rule(repo=REPO)
        def delete_repository(self, repo: int) -> None:
            name = self.repos[repo]
            where = "WHERE repository = %s ORDER BY 1"
            tags = _one(conn, f"SELECT tag FROM tags {where}", name)
            manifests = _one(conn, f"SELECT digest FROM manifests {where}", name)
            blobs = _one(conn, f"SELECT digest FROM blob_links {where}", name)
            try:
                app.delete_repository(name, tags, manifests, blobs, WHO)
            except RegistryError as exc:
                assert exc.code == "NAME_UNKNOWN" and name not in self.live_repos
            else:
                self.live_repos.remove(name)
                self.manifests = {k: v for k, v in self.manifests.items() if k[0] != name}
                self.tags = {k: v for k, v in self.tags.items() if k[0] != name}
                self.blobs = {k for k in self.blobs if k[0] != name}
                self.pulls.pop(name, None)  # a repository's pulls go with it
                self.tag_pulls = {k: n for k, n in self.tag_pulls.items() if k[0] != name}

        @rule(
            repo=REPO,
            tag=st.sampled_from(TAGS),
            by_tag=st.integers(0, 5),
            by_digest=st.integers(0, 3),
            again=st.booleans(),
        )
        def count_pulls(self, repo: int, tag: str, by_tag: int, by_digest: int, again: bool):
            """A flush of an API process' pulls (of a tag, pushed or not, and by digest);
            `again`: the same flush tried again (stored once)."""
            name = self.repos[repo]
            counts = {tag: by_tag, image_info(0)[0]: by_digest}
            counts = {ref: n for ref, n in counts.items() if n}
            if not counts:
                return
            now = datetime.now(UTC)
            flush = PullBatch(name, counts, now, now, "replay:1", unique("f"))
            position = app.count_pulls([flush], SYSTEM)
            assert (position is None) == (name not in self.live_repos)  # a deleted one: none
            if again:
                assert app.count_pulls([flush], SYSTEM) is None
            if position is not None:
                self.pulls[name] = self.pulls.get(name, 0) + by_tag + by_digest
                if by_tag:
                    self.tag_pulls[name, tag] = self.tag_pulls.get((name, tag), 0) + by_tag

        @rule(user=st.integers(0, 1))
        def register_user(self, user: int) -> None:
            name = self.users[user]
            if name in self.members:
                return
            app.register_user(name, "password-1", "user", WHO)
            self.members[name] = {name: "owner"}

        @rule(org=st.integers(0, 1), owner=st.integers(0, 1), public=st.booleans())
        def create_namespace(self, org: int, owner: int, public: bool) -> None:
            name, user = self.orgs[org], self.users[owner]
            if name in self.members or user not in self.members:
                return
            app.create_namespace(name, user, public, WHO)
            self.members[name] = {user: "owner"}

        @rule(org=st.integers(0, 1))
        def delete_namespace(self, org: int) -> None:
            name = self.orgs[org]  # never holds repositories
            if name not in self.members:
                with pytest.raises(RegistryError):
                    app.delete_namespace(name, [], WHO)
                return
            robots = [t for t in self.tokens if t.startswith(f"robot${name}+")]
            app.delete_namespace(name, robots, WHO)
            del self.members[name]
            self.tokens.update({t: True for t in robots})

        @rule(ns=st.integers(0, 3), user=st.integers(0, 1), role=st.sampled_from(ROLES))
        def set_member(self, ns: int, user: int, role: str) -> None:
            namespace, name = (self.users + self.orgs)[ns], self.users[user]
            members = self.members.get(namespace)
            if members is None or name not in self.members:
                return
            others = [u for u, r in members.items() if r == "owner" and u != name]
            if members.get(name) == "owner" and role != "owner" and not others:
                with pytest.raises(RegistryError):  # the last owner stays
                    app.set_member(namespace, name, role, WHO)
                return
            app.set_member(namespace, name, role, WHO)
            members[name] = role

        @rule(ns=st.integers(0, 3), user=st.integers(0, 1))
        def remove_member(self, ns: int, user: int) -> None:
            namespace, name = (self.users + self.orgs)[ns], self.users[user]
            members = self.members.get(namespace)
            if members is None:
                return
            others = [u for u, r in members.items() if r == "owner" and u != name]
            if name not in members or (members[name] == "owner" and not others):
                with pytest.raises(RegistryError):
                    app.remove_member(namespace, name, WHO)
                return
            app.remove_member(namespace, name, WHO)
            del members[name]

        @rule(ns=st.integers(0, 3), robot=st.booleans())
        def issue_token(self, ns: int, robot: bool) -> None:
            namespace = (self.users + self.orgs)[ns]
            if namespace not in self.members:
                return
            if robot:
                token_id = robot_name(namespace, f"r{len(self.tokens)}")
                kind, principal, home = ROBOT, token_id, namespace
            else:
                token_id, _ = new_personal_secret()
                kind, principal, home = PERSONAL, self.users[0], ""
            app.issue_access_token(
                token_id, kind, principal, home, "t", "", {namespace: ["pull"]}, 2**31, "s", WHO
            )
            self.tokens[token_id] = False

        @rule(data=st.data())
        def revoke_token(self, data: st.DataObject) -> None:
            if self.tokens:
                token_id = data.draw(st.sampled_from(sorted(self.tokens)))
                app.revoke_access_token(token_id, WHO)
                self.tokens[token_id] = True

        # -- the live views after every step -------------------------------------------------
        @invariant()
        def live_views(self) -> None:
            catch_up(runner, conn)  # "live": the runner catches up after every command
            self.views_are_consistent()
            self.views_show_the_model()
            self.identity_shows_the_model()

        def views_are_consistent(self) -> None:
            dangling = conn.execute(
                "SELECT t.repository, t.tag, t.digest FROM tags t LEFT JOIN manifests m"
                " ON m.repository = t.repository AND m.digest = t.digest WHERE m.digest IS NULL"
            ).fetchall()
            assert dangling == [], "tags pointing at manifests absent from the manifests view"
            orphans = conn.execute(
                "SELECT r.repository, r.digest FROM referrers r LEFT JOIN manifests m"
                " ON m.repository = r.repository AND m.digest = r.digest WHERE m.digest IS NULL"
            ).fetchall()
            assert orphans == [], "referrers of manifests that are not live"
            homeless = conn.execute(
                "SELECT repository FROM manifests UNION SELECT repository FROM tags"
                " UNION SELECT repository FROM blob_links EXCEPT SELECT name FROM repositories"
            ).fetchall()
            assert homeless == [], "rows of repositories that do not exist"
            # The management API's views agree with the registry's own.
            images = (
                conn.execute(
                    "SELECT repository, tag, digest FROM images EXCEPT ALL"
                    " SELECT repository, tag, digest FROM tags"
                ).fetchall()
                + conn.execute(
                    "SELECT repository, tag, digest FROM tags EXCEPT ALL"
                    " SELECT repository, tag, digest FROM images"
                ).fetchall()
            )
            assert images == [], "the images view differs from the tags view"
            refs = conn.execute(
                "(SELECT repository, 'blob', digest, size FROM blob_links"
                " UNION ALL SELECT repository, 'manifest', digest, size FROM manifests)"
                " EXCEPT ALL SELECT repository, kind, digest, size FROM storage_refs"
            ).fetchall()
            count = conn.execute("SELECT count(*) FROM storage_refs").fetchone()[0]
            links = conn.execute(
                "SELECT (SELECT count(*) FROM blob_links) + (SELECT count(*) FROM manifests)"
            ).fetchone()[0]
            assert refs == [] and count == links, "storage references differ"
            # (this world links one digest with different sizes; the counters keep the first)
            refs_per_blob = conn.execute(
                "SELECT digest, count(*) FROM storage_refs GROUP BY digest ORDER BY digest"
            ).fetchall()
            assert (
                refs_per_blob
                == conn.execute("SELECT digest, refs FROM storage_blobs ORDER BY digest").fetchall()
            ), "reference counts drifted"
            kept = conn.execute(
                "SELECT coalesce(sum(blobs), 0), coalesce(sum(bytes), 0),"
                " coalesce(sum(referenced), 0) FROM storage_totals"
            ).fetchone()
            counted = conn.execute(
                "SELECT (SELECT count(*) FROM storage_blobs),"
                " (SELECT coalesce(sum(size), 0) FROM storage_blobs),"
                " (SELECT coalesce(sum(size), 0) FROM storage_refs)"
            ).fetchone()
            assert kept == counted, "storage counters drifted"
            per_namespace = conn.execute(
                "SELECT namespace, count(*), sum(b.size) FROM (SELECT DISTINCT"
                " storage_namespace_of(repository) AS namespace, digest FROM storage_refs) d"
                " JOIN storage_blobs b USING (digest) GROUP BY namespace ORDER BY namespace"
            ).fetchall()
            assert (
                per_namespace
                == conn.execute(
                    "SELECT namespace, blobs, bytes FROM storage_namespaces ORDER BY namespace"
                ).fetchall()
            ), "per-namespace storage counters drifted"
            per_repository = conn.execute(
                "SELECT repository, sum(size) FROM storage_refs GROUP BY repository"
                " ORDER BY repository"
            ).fetchall()
            assert (
                per_repository
                == conn.execute(
                    "SELECT repository, bytes FROM storage_repositories ORDER BY repository"
                ).fetchall()
            ), "per-repository bytes drifted"
            wrong_subject = conn.execute(
                "SELECT r.digest FROM referrers r JOIN manifests m"
                " ON m.repository = r.repository AND m.digest = r.digest"
                " WHERE m.subject IS DISTINCT FROM r.subject"
            ).fetchall()
            assert wrong_subject == []

        def identity_shows_the_model(self) -> None:
            for namespace, members in self.members.items():
                rows = conn.execute(
                    "SELECT username, role FROM namespace_members WHERE namespace = %s",
                    (namespace,),
                ).fetchall()
                assert dict(rows) == members, namespace
            for token_id, revoked in self.tokens.items():
                row = _one(
                    conn,
                    "SELECT revoked_at IS NOT NULL FROM access_tokens WHERE token_id = %s",
                    token_id,
                )
                assert row == [revoked], token_id

        def views_show_the_model(self) -> None:
            mine = "repository = ANY(%s)"
            rows = conn.execute(
                f"SELECT repository, tag, digest FROM tags WHERE {mine}", (self.repos,)
            ).fetchall()
            assert {(r, t): d for r, t, d in rows} == self.tags
            rows = conn.execute(
                f"SELECT repository, digest FROM manifests WHERE {mine}", (self.repos,)
            ).fetchall()
            assert set(rows) == set(self.manifests)
            rows = conn.execute(
                f"SELECT repository, digest FROM blob_links WHERE {mine}", (self.repos,)
            ).fetchall()
            assert set(rows) == self.blobs
            rows = conn.execute(
                f"SELECT repository, subject, digest FROM referrers WHERE {mine}", (self.repos,)
            ).fetchall()
            assert set(rows) == {
                (r, info.subject, d) for (r, d), info in self.manifests.items() if info.subject
            }
            rows = _one(conn, "SELECT name FROM repositories WHERE name = ANY(%s)", self.repos)
            assert set(rows) == self.live_repos
            rows = conn.execute(
                f"SELECT repository, pull_count FROM pull_repositories WHERE {mine}",
                (self.repos,),
            ).fetchall()
            assert dict(rows) == self.pulls
            rows = conn.execute(
                f"SELECT repository, tag, pull_count FROM pull_tags WHERE {mine}", (self.repos,)
            ).fetchall()
            assert {(r, t): n for r, t, n in rows} == self.tag_pulls
            # The write side agrees with what clients see.
            for (repo, tag), digest in self.tags.items():
                assert app.tag_digest(repo, tag) == digest
            for key in self.ever:
                assert app.manifest_exists(*key) == (key in self.manifests)

        def teardown(self) -> None:
            # Live, then replayed from position 0: the same rows.
            catch_up(runner, conn)
            live = snapshot(conn)
            head = app.recorder.max_notification_id() or 0
            assert all(p == head for _, p in live["view_positions"])
            assert runner.rebuild() == len(live["history"])
            assert snapshot(conn) == live

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_tag_missed_by_a_manifest_delete(
    app: Registry, conn: psycopg.Connection[Any], database_url: str
) -> None:
    """A manifest deleted with a stale tag list (the views had not seen the tag yet): the
    tag disappears with it, and pushing the manifest again restores only the tags pushed."""
    runner = ProjectionRunner(app, database_url)
    digest, info = image_info(0)
    tags_sql = "SELECT tag, digest FROM tags WHERE repository = 'r' ORDER BY 1"
    app.push_manifest("r", digest, 1, info, "t", WHO)
    app.delete_manifest("r", digest, [], WHO)  # "t" not listed
    catch_up(runner, conn)
    assert conn.execute(tags_sql).fetchall() == []
    assert app.tag_digest("r", "t") is None
    with pytest.raises(RegistryError) as err:
        app.delete_tag("r", "t", WHO)
    assert err.value.code == "MANIFEST_UNKNOWN"

    app.push_manifest("r", digest, 1, info, None, WHO)  # untagged: "t" stays gone
    catch_up(runner, conn)
    assert conn.execute(tags_sql).fetchall() == []
    assert app.tag_digest("r", "t") is None

    assert app.push_manifest("r", digest, 1, info, "t", WHO) is not None  # "t" comes back
    catch_up(runner, conn)
    assert conn.execute(tags_sql).fetchall() == [("t", digest)]
    assert app.tag_digest("r", "t") == digest
    assert app.push_manifest("r", digest, 1, info, "t", WHO) is None  # idempotent again
    app.delete_tag("r", "t", WHO)
    catch_up(runner, conn)
    live = snapshot(conn)
    runner.rebuild()
    assert snapshot(conn) == live


# -- the CLI ---------------------------------------------------------------------------------
def _cli(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYP_")}
    env.update(CYP_DATABASE_URL=as_url(database_url), CYP_LOG_LEVEL="warning")
    return subprocess.run(
        [sys.executable, "-m", "cyp_registry.cli", "replay", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SUMMARY = re.compile(
    r"^replayed (\d+) events into (\d+) views \(([a-z_, ]+)\) in [\d.]+s \((\d+) events/s\)$"
)


def _populate(app: Registry) -> None:
    for i in IMAGES:
        digest, info = image_info(i)
        for blob in info.referenced_blobs():
            app.link_blob("cli/app", blob, 1, WHO)
        app.push_manifest("cli/app", digest, 100, info, f"v{i}", WHO)
        app.push_manifest("cli/app", digest, 100, info, "latest", WHO)
    digest, info = referrer_info(0, 1)
    app.push_manifest("cli/app", digest, 50, info, None, WHO)
    app.delete_tag("cli/app", "v0", WHO)


def test_cli_replay(
    app: Registry, conn: psycopg.Connection[Any], database_url: str, tmp_path: Path
) -> None:
    _populate(app)
    catch_up(ProjectionRunner(app, database_url), conn)
    live = snapshot(conn)
    head = app.recorder.max_notification_id()

    # All views, after wrecking them.
    for table in ("repositories", "tags", "manifests", "history"):
        conn.execute(f"DELETE FROM {table}")
    done = _cli(database_url, tmp_path)
    assert done.returncode == 0, done.stderr
    match = SUMMARY.match(done.stdout.strip().splitlines()[-1])
    assert match, done.stdout
    count, views, names, rate = match.groups()
    assert int(count) == len(live["history"]) > 0
    assert int(views) == len(VIEWS) and names.split(", ") == list(VIEWS)
    assert int(rate) > 0
    assert snapshot(conn) == live
    assert app.recorder.max_notification_id() == head  # replay writes no events

    # One view only: the others keep their (here: wrecked) rows.
    conn.execute("DELETE FROM tags")
    conn.execute("DELETE FROM repositories")
    done = _cli(database_url, tmp_path, "tags")
    assert done.returncode == 0, done.stderr
    match = SUMMARY.match(done.stdout.strip().splitlines()[-1])
    assert match and match.group(2) == "1" and match.group(3) == "tags", done.stdout
    after = snapshot(conn)
    assert after["tags"] == live["tags"]
    assert after["repositories"] == []
    assert after["history"] == live["history"]

    # Unknown view: exit 2, nothing touched.
    done = _cli(database_url, tmp_path, "tags", "nonsense")
    assert done.returncode == 2
    assert "nonsense" in done.stderr
    assert snapshot(conn) == after


# -- two writers, one hot tag ------------------------------------------------------------------
def test_two_writers_move_one_tag(app: Registry, database_url: str) -> None:
    other = Registry(env=small_pool(database_url))  # its own connection pool
    moves = 100
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(registry: Registry, who: str) -> None:
        try:
            start.wait()
            for i in range(moves):
                digest = sha(f"{who}-{i}")
                _, info = image_info(i % 4)
                registry.push_manifest("hot/app", digest, 100, info, "latest", Caller(who, ""))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(registry, who))
        for registry, who in ((app, "one"), (other, "two"))
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        other.close()
    assert errors == []
    assert not any(t.is_alive() for t in threads)

    tag_id = Tag.create_id("hot/app", "latest")
    events = list(app.events.get(tag_id))
    assert len(events) == 2 * moves  # one creation and 199 moves: none lost
    assert [e.originator_version for e in events] == list(range(1, 2 * moves + 1))
    assert sorted(e.actor for e in events) == ["one"] * moves + ["two"] * moves
    previous = None
    for event in events:  # an unbroken chain of moves
        assert event.from_digest == previous
        previous = event.to_digest
    assert app.tag_digest("hot/app", "latest") == previous
    # The hot tag was snapshotted along the way, and the snapshot agrees.
    assert app.snapshots is not None
    snapshots = list(app.snapshots.get(tag_id))
    assert [s.originator_version for s in snapshots] == [50, 100, 150, 200]

    # Every push also recorded its manifest: 200 manifests, one repository.
    with psycopg.connect(database_url, autocommit=True) as conn:
        runner = ProjectionRunner(app, database_url)
        catch_up(runner, conn)
        assert _one(conn, "SELECT count(*) FROM manifests WHERE repository = 'hot/app'") == [200]
        assert _one(conn, "SELECT digest FROM tags WHERE repository = 'hot/app'") == [previous]
        assert _one(conn, "SELECT count(*) FROM history WHERE type = 'tag.moved'") == [200]
