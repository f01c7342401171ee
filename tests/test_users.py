"""Users: the aggregate and its events, the username grammar, argon2id passwords, the
commands, the users view, the `user` CLI, the first start's admin — and password hashes
never leaving the event store (not in the history view, not on NATS)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cyp_registry.settings import Settings
from domain.caller import SYSTEM, Caller
from domain.documents import event_document, event_fields, event_kind
from domain.errors import ERROR_CODES, RegistryError
from domain.identity import RESERVED_USERNAMES, USERNAME_RE, User, check_username, is_valid_username
from domain.names import NAME_RE
from domain.passwords import check_password, hash_password, needs_rehash, verify_password
from domain.registry import Registry
from migrations import migrate
from projections import users as users_view
from tests.consistency import (
    assert_views_equal_replay,
    stream_messages,
    wait_relayed,
    wait_views_current,
)
from tests.support import ROOT, as_url
from workers.projector import ProjectionRunner

WHO = ("alice", "10.0.0.1")
HASH_PREFIX = "$argon2id$"
USER_KINDS = [
    "user.registered",
    "user.password_changed",
    "user.role_changed",
    "user.disabled",
    "user.enabled",
]


# -- username grammar --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["ab", "a1", "alice", "bob.smith", "ci-bot_2", "0x", "a" * 64, "x.y-z_0"]
)
def test_valid_usernames(name: str) -> None:
    assert is_valid_username(name)
    assert check_username(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a",
        "a" * 65,
        "Alice",
        "library",
        "-ab",
        "ab-",
        "a..b",
        "a_-b",
        "a b",
        "ab/cd",
        "ab:cd",
        "ébé",
        "ab\n",
        "١٢",  # non-ASCII digits are not [0-9]
    ],
)
def test_invalid_usernames(name: str) -> None:
    assert not is_valid_username(name)
    with pytest.raises(RegistryError) as err:
        check_username(name)
    assert err.value.code == "INVALID_INPUT" and err.value.status == 400


@given(st.from_regex(USERNAME_RE, fullmatch=True))
def test_grammar_names_are_valid_within_the_length_bounds(name: str) -> None:
    expected = 2 <= len(name) <= 64 and name not in RESERVED_USERNAMES
    assert is_valid_username(name) == expected
    # A username becomes a namespace: it is always a valid repository name component.
    assert NAME_RE.fullmatch(name) is not None


@given(st.text(alphabet="abcAB019._-/ \u00e9", max_size=70))
def test_any_text_is_valid_exactly_when_it_matches_the_grammar(name: str) -> None:
    oracle = (
        re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*", name) is not None
        and 2 <= len(name) <= 64
        and name != "library"
    )
    assert is_valid_username(name) == oracle


# -- passwords ---------------------------------------------------------------------------------
def test_argon2id_hash_and_verify() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith(HASH_PREFIX) and "correct horse" not in hashed
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "correct horsE")
    assert not verify_password(hashed, "")
    assert not needs_rehash(hashed)
    # A fresh salt each time: the same password never hashes the same.
    again = hash_password("correct horse")
    assert again != hashed and verify_password(again, "correct horse")


def test_unknown_or_broken_hashes_never_verify() -> None:
    assert not verify_password(None, "not a password of anyone")  # the dummy's own password
    assert not verify_password("", "whatever1")
    assert not verify_password("not-a-hash", "whatever1")
    assert not verify_password("$argon2id$v=19$m=65536,t=3,p=4$broken", "whatever1")
    assert not verify_password(hash_password("x" * 1024), "x" * 1025)


@pytest.mark.parametrize("password", ["", "1234567", "x" * 1025])
def test_password_length_is_checked(password: str) -> None:
    with pytest.raises(RegistryError) as err:
        check_password(password)
    assert err.value.code == "INVALID_INPUT"
    with pytest.raises(RegistryError):
        hash_password(password)


def test_minimum_length_is_eight() -> None:
    assert check_password("12345678") == "12345678"


# -- the aggregate and its events --------------------------------------------------------------
def replay(events: list[Any]) -> Any:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _user_events() -> list[Any]:
    user = User.register("bob", "user", "$argon2id$first", *WHO)
    user.change_password("$argon2id$second", *WHO)
    user.change_role("admin", *WHO)
    user.disable(*WHO)
    user.enable(*WHO)
    return user.collect_events()


def test_user_events_and_state() -> None:
    events = _user_events()
    assert [event_kind(e) for e in events] == USER_KINDS
    assert all(e.originator_id == User.create_id("bob") for e in events)
    assert [e.originator_version for e in events] == [1, 2, 3, 4, 5]
    assert all((e.actor, e.client) == WHO and e.username == "bob" for e in events)
    assert (events[2].from_role, events[2].role) == ("user", "admin")
    user = replay(events)
    assert (user.username, user.role, user.password_hash, user.disabled) == (
        "bob",
        "admin",
        "$argon2id$second",
        False,
    )
    assert replay(events[:4]).disabled
    assert User.create_id("bob") != User.create_id("bob2")


def test_hash_is_stored_in_the_event_but_never_in_its_document() -> None:
    for event in _user_events():
        secret = getattr(type(event), "secret_fields", ())
        carries_hash = hasattr(event, "password_hash")
        assert ("password_hash" in secret) == carries_hash
        fields = event_fields(event)
        document = event_document(event, 7)
        assert "password_hash" not in fields and "password_hash" not in document
        assert "$argon2id$" not in json.dumps(document)
        assert document["username"] == "bob" and document["actor"] == "alice"


@pytest.fixture
def app() -> Iterator[Registry]:
    """The registry on in-memory persistence, with its real mapper and transcoder."""
    registry = Registry(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield registry
    registry.close()


def test_user_events_decode_back_equal(app: Registry) -> None:
    for event in _user_events():
        back = app.mapper.to_domain_event(app.mapper.to_stored_event(event))
        assert type(back) is type(event) and vars(back) == vars(event)


def test_error_codes() -> None:
    assert ERROR_CODES["USER_EXISTS"][0] == 409
    assert ERROR_CODES["USER_UNKNOWN"][0] == 404
    assert ERROR_CODES["INVALID_INPUT"][0] == 400


# -- commands on in-memory persistence ---------------------------------------------------------
def kinds(app: Registry, after: int = 0) -> list[str]:
    return [
        event_kind(app.mapper.to_domain_event(n))
        for n in app.recorder.select_notifications(after + 1, 1000)
    ]


def _code(call: Any, *args: Any) -> str:
    with pytest.raises(RegistryError) as err:
        call(*args)
    return err.value.code


def test_user_commands(app: Registry) -> None:
    who = Caller(*WHO)
    assert app.register_user("carol", "first-password", "user", who) == 2
    user = app.find_user("carol")
    assert user is not None and user.role == "user" and not user.disabled
    assert verify_password(user.password_hash, "first-password")
    assert _code(app.register_user, "carol", "other-password", "admin", who) == "USER_EXISTS"

    assert app.change_password("carol", "second-password", who) == 3
    user = app.find_user("carol")
    assert verify_password(user.password_hash, "second-password")
    assert not verify_password(user.password_hash, "first-password")
    assert app.change_role("carol", "admin", who) == 4
    assert app.change_role("carol", "admin", who) is None  # nothing to change
    assert app.disable_user("carol", who) == 5
    assert app.disable_user("carol", who) is None
    assert app.find_user("carol").disabled
    assert app.enable_user("carol", who) == 6
    assert app.enable_user("carol", who) is None
    # the user's personal namespace is created in the same transaction
    assert kinds(app) == [USER_KINDS[0], "namespace.created", *USER_KINDS[1:]]
    assert all(
        app.mapper.to_domain_event(n).actor == "alice"
        for n in app.recorder.select_notifications(1, 10)
    )


def test_user_commands_refuse_bad_input_and_store_nothing(app: Registry) -> None:
    assert _code(app.register_user, "Bad Name", "long-enough", "user", SYSTEM) == "INVALID_INPUT"
    assert _code(app.register_user, "library", "long-enough", "user", SYSTEM) == "INVALID_INPUT"
    assert _code(app.register_user, "dave", "short", "user", SYSTEM) == "INVALID_INPUT"
    assert _code(app.register_user, "dave", "long-enough", "root", SYSTEM) == "INVALID_INPUT"
    for call, args in (
        (app.change_password, ("nobody", "long-enough", SYSTEM)),
        (app.change_role, ("nobody", "admin", SYSTEM)),
        (app.disable_user, ("nobody", SYSTEM)),
        (app.enable_user, ("nobody", SYSTEM)),
    ):
        assert _code(call, *args) == "USER_UNKNOWN"
    app.register_user("dave", "long-enough", "user", SYSTEM)
    assert _code(app.change_password, "dave", "short", SYSTEM) == "INVALID_INPUT"
    assert _code(app.change_role, "dave", "owner", SYSTEM) == "INVALID_INPUT"
    assert kinds(app) == ["user.registered", "namespace.created"]
    assert app.find_user("Not Valid") is None and app.find_user("nobody") is None


# -- on the real database ----------------------------------------------------------------------
def small_pool(database_url: str) -> dict[str, str]:
    from cyp_registry.wiring import eventsourcing_env

    env = eventsourcing_env(database_url)
    env.update(POSTGRES_POOL_SIZE="2", POSTGRES_MAX_OVERFLOW="2")
    return env


@pytest.fixture
def pg_app(database_url: str) -> Iterator[Registry]:
    migrate(database_url)
    registry = Registry(env=small_pool(database_url))
    yield registry
    registry.close()


def catch_up(app: Registry, database_url: str) -> None:
    runner = ProjectionRunner(app, database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        while runner.step(conn):
            pass


def rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()


def _history_has_no_hash(database_url: str) -> None:
    history = rows(database_url, "SELECT type, details::text FROM history")
    user_rows = [(kind, details) for kind, details in history if kind.startswith("user.")]
    assert user_rows, "no user events in the history view"
    for kind, details in user_rows:
        assert "password_hash" not in details and HASH_PREFIX not in details, kind
    assert all("password_hash" not in d and HASH_PREFIX not in d for _, d in history)


def test_users_view_and_queries(pg_app: Registry, database_url: str) -> None:
    pg_app.register_user("erin", "erin-password", "user", Caller("cli", ""))
    pg_app.register_user("ann", "ann-password", "admin", SYSTEM)
    pg_app.change_role("erin", "admin", Caller("ann", "10.1.1.1"))
    pg_app.disable_user("erin", SYSTEM)
    catch_up(pg_app, database_url)

    created, changed, disabled = [e.timestamp for e in pg_app.events.get(User.create_id("erin"))]
    table = rows(database_url, "SELECT * FROM users ORDER BY name")
    assert [r[:4] for r in table] == [
        ("ann", "admin", False, pg_app.find_user("ann").password_hash),
        ("erin", "admin", True, pg_app.find_user("erin").password_hash),
    ]
    erin = table[1]
    assert erin[4:7] == (created, "cli", disabled)  # event timestamps, not now()
    assert erin[7] == created  # password_changed_at: set at registration

    async def queries() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            row = await users_view.get(conn, "erin")
            assert row == users_view.UserRow("erin", "admin", True, created, "cli", disabled)
            assert "password_hash" not in row._fields
            assert await users_view.get(conn, "nobody") is None
            assert [r.name for r in await users_view.page(conn)] == ["ann", "erin"]
            assert [r.name for r in await users_view.page(conn, "ann", 10)] == ["erin"]
            assert [r.name for r in await users_view.page(conn, "", 1)] == ["ann"]
            assert await users_view.count(conn) == 2
            creds = await users_view.credentials(conn, "ann")
            assert creds is not None and creds.role == "admin" and not creds.disabled
            assert verify_password(creds.password_hash, "ann-password")
            assert await users_view.credentials(conn, "nobody") is None

    asyncio.run(queries())
    _history_has_no_hash(database_url)
    assert changed <= disabled


def test_replay_equals_live_with_users(pg_app: Registry, database_url: str) -> None:
    from tests.test_replay import TABLES, image_info, snapshot

    assert "users" in TABLES
    who = Caller("tester", "127.0.0.1")
    digest, info = image_info(0)
    pg_app.push_manifest("u/app", digest, 10, info, "latest", who)
    for i, name in enumerate(("frank", "gina", "hal")):
        pg_app.register_user(name, f"password-{i}", "user", who)
    pg_app.change_password("frank", "new-password", who)
    pg_app.change_role("gina", "admin", who)
    pg_app.disable_user("hal", who)
    pg_app.enable_user("hal", who)
    pg_app.disable_user("frank", who)
    runner = ProjectionRunner(pg_app, database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        while runner.step(conn):
            pass
        live = snapshot(conn)
        assert len(live["users"]) == 3
        assert runner.rebuild() == len(live["history"])
        assert snapshot(conn) == live
    _history_has_no_hash(database_url)


def test_two_writers_register_one_name(pg_app: Registry, database_url: str) -> None:
    """Two processes register the same name at once (replicas creating the first admin):
    one optimistic-concurrency conflict on the one aggregate, one user, one event."""
    other = Registry(env=small_pool(database_url))
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def register(app: Registry, password: str) -> None:
        start.wait()
        try:
            outcomes.append(app.register_user("admin", password, "admin", SYSTEM))
        except RegistryError as exc:
            outcomes.append(exc.code)

    threads = [
        threading.Thread(target=register, args=(app, pw))
        for app, pw in ((pg_app, "password-one"), (other, "password-two"))
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        other.close()
    assert sorted(outcomes, key=str) == [2, "USER_EXISTS"]
    assert [event_kind(e) for e in _events_of(pg_app, "admin")] == ["user.registered"]


# -- the CLI -----------------------------------------------------------------------------------
def cli(
    database_url: str, *args: str, stdin: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYP_")}
    env.update(CYP_DATABASE_URL=as_url(database_url), CYP_LOG_LEVEL="warning")
    return subprocess.run(
        [sys.executable, "-m", "cyp_registry.cli", "user", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _events_of(app: Registry, username: str) -> list[Any]:
    return list(app.events.get(User.create_id(username)))


def test_cli_user_commands(database_url: str, tmp_path: Path) -> None:
    password = "cli-password-1"
    done = cli(database_url, "add", "ivan", "--role", "admin", "--password-stdin", stdin=password)
    assert done.returncode == 0, done.stderr
    assert "created user ivan" in done.stdout
    outputs = [done.stdout + done.stderr]

    migrate(database_url)
    app = Registry(env=small_pool(database_url))
    try:
        user = app.find_user("ivan")
        assert (
            user is not None
            and user.role == "admin"
            and verify_password(user.password_hash, password)
        )
        assert _events_of(app, "ivan")[0].actor == "cli"

        # One trailing newline (as `echo` gives) is not part of the password.
        done = cli(database_url, "passwd", "ivan", "--password-stdin", stdin="cli-password-2\n")
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
        user = app.find_user("ivan")
        assert verify_password(user.password_hash, "cli-password-2")
        assert not verify_password(user.password_hash, password)

        done = cli(database_url, "disable", "ivan")
        assert done.returncode == 0 and "disabled user ivan" in done.stdout, done.stderr
        assert cli(database_url, "disable", "ivan").returncode == 0  # already: no event
        assert app.find_user("ivan").disabled
        done = cli(database_url, "enable", "ivan")
        assert done.returncode == 0 and "enabled user ivan" in done.stdout, done.stderr
        assert not app.find_user("ivan").disabled
        done = cli(database_url, "role", "ivan", "user")
        assert done.returncode == 0, done.stderr
        assert app.find_user("ivan").role == "user"
        events = _events_of(app, "ivan")
        assert [event_kind(e) for e in events] == USER_KINDS[:1] + [
            "user.password_changed",
            "user.disabled",
            "user.enabled",
            "user.role_changed",
        ]
        assert {e.actor for e in events} == {"cli"}

        # Domain errors: a clear message, exit 1, nothing stored.
        head = app.recorder.max_notification_id()
        for args, stdin, message in (
            (("add", "ivan", "--password-stdin"), "whatever-pw", "user ivan already exists"),
            (("add", "Ivan", "--password-stdin"), "whatever-pw", "username"),
            (("add", "library", "--password-stdin"), "whatever-pw", "reserved"),
            (("add", "judy", "--password-stdin"), "short", "8 to 1024 characters"),
            (("add", "judy", "--password-stdin"), "", "no password"),
            (("passwd", "nobody", "--password-stdin"), "whatever-pw", "no user nobody"),
            (("disable", "nobody"), None, "no user nobody"),
            (("enable", "nobody"), None, "no user nobody"),
        ):
            done = cli(database_url, *args, stdin=stdin)
            assert done.returncode == 1, (args, done.stdout, done.stderr)
            assert message in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
            outputs.append(done.stdout + done.stderr)
        assert app.recorder.max_notification_id() == head

        # No password on the command line: --password-stdin is required, and there is no
        # option that takes the password itself.
        done = cli(database_url, "add", "judy", stdin="judy-password")
        assert done.returncode == 2 and "--password-stdin" in done.stderr
        done = cli(database_url, "add", "--help")
        assert done.returncode == 0 and "--password " not in done.stdout
        assert app.find_user("judy") is None

        # The passwords are never printed; the hashes neither.
        for text in outputs:
            assert "cli-password" not in text and "whatever-pw" not in text
            assert HASH_PREFIX not in text

        catch_up(app, database_url)
        assert rows(database_url, "SELECT name, role, disabled FROM users") == [
            ("ivan", "user", False)
        ]
        _history_has_no_hash(database_url)
    finally:
        app.close()


# -- first start -------------------------------------------------------------------------------
CREATED = re.compile(r"created user admin with password (\S+)")


def _admin_hash(database_url: str) -> str:
    wait_views_current(database_url)
    found = rows(
        database_url, "SELECT role, disabled, password_hash FROM users WHERE name = 'admin'"
    )
    assert len(found) == 1 and found[0][:2] == ("admin", False), found
    return found[0][2]


def _registered(database_url: str) -> list[tuple[Any, ...]]:
    return rows(
        database_url,
        "SELECT type, actor, details->>'username' FROM history WHERE type = 'user.registered'",
    )


def test_first_start_admin_with_the_given_password(registry_factory, database_url: str) -> None:
    password = "given-admin-password"
    reg = registry_factory(CYP_ADMIN_PASSWORD=password).start()
    assert verify_password(_admin_hash(database_url), password)
    assert _registered(database_url) == [("user.registered", "system", "admin")]
    log = reg.log.read_text()
    assert "created user admin with the password in CYP_ADMIN_PASSWORD" in log
    assert password not in log and not CREATED.search(log)

    # A restart (even with another password set) creates nobody and changes nothing.
    reg.stop()
    again = registry_factory(CYP_ADMIN_PASSWORD="another-password").start()
    assert verify_password(_admin_hash(database_url), password)
    assert "created user admin" not in again.log.read_text()
    assert len(_registered(database_url)) == 1


def test_first_start_admin_with_a_random_password_logged_once(
    registry_factory, database_url: str
) -> None:
    registry = registry_factory(CYP_ADMIN_PASSWORD=None).start()  # no password given
    log = registry.log.read_text()
    found = CREATED.findall(log)
    assert len(found) == 1, log
    password = found[0]
    assert len(password) >= 16
    assert verify_password(_admin_hash(database_url), password)
    assert _registered(database_url) == [("user.registered", "system", "admin")]
    # The plain password is nowhere in the database: not in the event store, not in a view.
    with psycopg.connect(database_url) as conn:
        for table in ("registry_events", "users", "history"):
            dump = conn.execute(f"SELECT string_agg(t::text, '') FROM {table} t").fetchone()[0]
            assert password not in dump, table
    # A second replica on the same database does not create (or log) another admin.
    replica = registry_factory(CYP_ADMIN_PASSWORD=None).start()
    assert "created user admin" not in replica.log.read_text()
    assert len(_registered(database_url)) == 1


def test_replicas_starting_together_create_one_admin(registry_factory, database_url) -> None:
    replicas = [registry_factory(CYP_ADMIN_PASSWORD=None) for _ in range(3)]
    errors: list[BaseException] = []

    def start(proc: Any) -> None:
        try:
            proc.start()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(proc,)) for proc in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    logs = "".join(proc.log.read_text() for proc in replicas)
    assert len(CREATED.findall(logs)) == 1, logs
    assert len(_registered(database_url)) == 1
    assert verify_password(_admin_hash(database_url), CREATED.findall(logs)[0])


def test_users_added_before_the_first_start_mean_no_admin(
    registry_factory, database_url: str
) -> None:
    """The CLI does not build the views: the users view is empty at the first start, but
    the log has a user, so no `admin` appears."""
    done = cli(
        database_url, "add", "ops", "--role", "admin", "--password-stdin", stdin="ops-pw-123"
    )
    assert done.returncode == 0, done.stderr
    reg = registry_factory().start()
    wait_views_current(database_url)
    assert rows(database_url, "SELECT name, role FROM users") == [("ops", "admin")]
    assert "created user admin" not in reg.log.read_text()


def test_a_too_short_admin_password_stops_the_start(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYP_")}
    env.update(
        CYP_DATABASE_URL=as_url(database_url),
        CYP_ADMIN_PASSWORD="short",
        CYP_WORKERS="false",
        CYP_NATS_URL="nats://127.0.0.1:1",
        CYP_LOG_LEVEL="warning",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cyp_registry.cli",
            "serve",
            "--port",
            "1",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "CYP_ADMIN_PASSWORD" in done.stderr and "Traceback" not in done.stderr
    assert rows(database_url, "SELECT count(*) FROM registry_events") == [(0,)]


def test_admin_password_is_a_documented_setting_kept_out_of_repr() -> None:
    settings = Settings.load({"CYP_ADMIN_PASSWORD": "hidden-value-1"})
    assert settings.admin_password == "hidden-value-1"
    assert "hidden-value-1" not in repr(settings)
    out = subprocess.run(
        [sys.executable, "-m", "cyp_registry.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "CYP_ADMIN_PASSWORD" in out
    assert "user" in out


# -- secrets never leave -----------------------------------------------------------------------
def test_password_hashes_reach_neither_history_nor_nats(
    registry, nats_url: str, database_url: str
) -> None:
    """User events go through a running registry (its first-start admin, then the CLI against
    its database): its projection runner and relay handle them; the users view has the hash,
    the history view and the JetStream messages do not."""
    for args, stdin in (
        (("add", "kate", "--password-stdin"), "kate-password"),
        (("passwd", "kate", "--password-stdin"), "kate-password-2"),
        (("role", "kate", "admin"), None),
        (("disable", "kate"), None),
    ):
        done = cli(database_url, *args, stdin=stdin)
        assert done.returncode == 0, done.stderr
    head = wait_relayed(nats_url, registry.stream, database_url)
    wait_views_current(database_url)
    hashes = [h for (h,) in rows(database_url, "SELECT password_hash FROM users")]
    assert len(hashes) == 2 and all(h.startswith(HASH_PREFIX) for h in hashes)

    messages = stream_messages(nats_url, registry.stream)
    user_messages = [m for m in messages if ".user." in m.subject]
    assert [json.loads(m.data)["type"] for m in user_messages] == [
        "user.registered",  # admin, at the first start
        "user.registered",
        "user.password_changed",
        "user.role_changed",
        "user.disabled",
    ]
    assert messages[-1].position == head
    for message in messages:
        text = message.data.decode()
        assert "password_hash" not in text and HASH_PREFIX not in text
        assert not any(h in text for h in hashes)
    kate = [json.loads(m.data) for m in user_messages if json.loads(m.data)["username"] == "kate"]
    assert kate[0]["role"] == "user" and kate[0]["actor"] == "cli"
    _history_has_no_hash(database_url)
    # The hashes are in the event store (the truth the users view is rebuilt from) only.
    registry.stop()
    assert_views_equal_replay(database_url, registry.data_dir)
