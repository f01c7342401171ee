"""The event store leaves no ERROR in the Postgres server's log in normal operation: not when
several processes create (or find) its tables at once, not when concurrent writers of one
aggregate conflict (the command handler retries those). Read from the server's own log
file, so these tests skip where it cannot be read (an embedded Postgres, another machine)."""

from __future__ import annotations

import glob
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from psycopg.conninfo import conninfo_to_dict

from cyp_registry import eventstore
from cyp_registry.settings import Settings
from cyp_registry.wiring import Stack, eventsourcing_env
from domain.caller import SYSTEM, Caller
from domain.registry import Registry
from migrations import migrate


def server_log(database_url: str) -> Path | None:
    """The log file of the Postgres `database_url` is on, if this process can read it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        current = conn.execute("SELECT pg_current_logfile()").fetchone()[0]
        directory = conn.execute("SHOW data_directory").fetchone()[0]
        major = conn.info.server_version // 10000
    if current:  # the logging collector: relative to the data directory
        candidates = [str(Path(directory) / current)]
    else:  # Debian's pg_ctlcluster: stderr to /var/log/postgresql/postgresql-<v>-<cluster>.log
        candidates = glob.glob(f"/var/log/postgresql/postgresql-{major}-*.log")
    for candidate in candidates:
        path = Path(candidate)
        try:
            with path.open("rb"):
                return path
        except OSError:
            continue
    return None


@contextmanager
def new_errors(database_url: str) -> Iterator[list[str]]:
    """Collects the ERROR lines the server logs for this database within the block (the log
    is shared: other databases' lines are someone else's)."""
    log = server_log(database_url)
    if log is None:
        pytest.skip("the Postgres server's log is not readable here")
    name = conninfo_to_dict(database_url)["dbname"]
    found: list[str] = []
    start = log.stat().st_size
    yield found
    with log.open("rb") as fh:
        fh.seek(start)
        text = fh.read().decode("utf-8", "replace")
    found.extend(line for line in text.splitlines() if f"@{name} " in line and " ERROR: " in line)


def _small(database_url: str) -> dict[str, str]:
    env = eventsourcing_env(database_url)
    env.update(POSTGRES_POOL_SIZE="2", POSTGRES_MAX_OVERFLOW="2")
    return env


def _together(count: int, work: Any) -> list[BaseException]:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


def test_replicas_starting_together_log_no_error(database_url: str, tmp_path: Path) -> None:
    """The first start creates the event store; every later one finds it (CREATE TYPE used to
    fail, suppressed, on each of them: ~150 ERRORs per test run). Here 4 replicas start on a
    new database at once, then 4 more on the existing one."""

    def replica(index: int) -> None:
        settings = Settings(database_url=database_url, data_dir=tmp_path / f"r{index}")
        with Stack(settings, need_nats=False) as stack:
            assert stack.registry is not None

    with new_errors(database_url) as errors:
        assert _together(4, replica) == []
        assert _together(4, replica) == []
    assert errors == []
    with psycopg.connect(database_url) as conn:
        types = conn.execute(
            "SELECT count(*) FROM pg_type WHERE typname = 'stored_event_uuid'"
        ).fetchone()[0]
    assert types == 1


def test_conflicting_writers_log_no_error(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' worth of writers flip one user's role: their saves conflict on the one
    aggregate, and each conflict is retried as before — without a unique violation."""
    conflicts: list[int] = []
    insert = eventstore.SerializedRecorder.insert_events

    def counting(self: Any, stored_events: Any, **kwargs: Any) -> Any:
        try:
            return insert(self, stored_events, **kwargs)
        except IntegrityError:
            conflicts.append(1)
            raise

    monkeypatch.setattr(eventstore.SerializedRecorder, "insert_events", counting)
    migrate(database_url)
    first = Registry(env=_small(database_url))
    first.register_user("hot", "hot-password-1", "user", SYSTEM)
    apps = [first, Registry(env=_small(database_url))]
    changed: list[int] = []
    rounds = 40

    def flip(index: int) -> None:
        who = Caller("admin", f"10.0.0.{index}")
        for n in range(rounds):
            if apps[index].change_role("hot", ("admin", "user")[n % 2], who) is not None:
                changed.append(1)

    try:
        with new_errors(database_url) as errors:
            assert _together(2, flip) == []
        stored = first.find_user("hot").version
    finally:
        for app in apps:
            app.close()
    assert conflicts, "the writers never conflicted: the test proves nothing"
    assert errors == []
    assert stored == 1 + len(changed)  # every change that reported success is stored once
