"""Fixtures on the real stack: the machine's Postgres and NATS if they run, embedded ones
(from the same wheels the registry uses) if not. Every test gets its own database and
its own JetStream stream, so runs never collide."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    OwnNats,
    OwnPostgres,
    RegistryProcess,
    create_database,
    delete_stream,
    drop_database,
    reachable,
    start_own_nats,
)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if reachable("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
        return
    from cyp_registry.embedded import start_postgres, stop_postgres

    url, handle = start_postgres(tmp_path_factory.mktemp("pg"))
    yield url
    stop_postgres(handle)


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if reachable("127.0.0.1", 4222):
        yield "nats://127.0.0.1:4222"
        return
    from cyp_registry.embedded import stop_nats

    url, proc = start_own_nats(tmp_path_factory.mktemp("nats"))
    yield url
    stop_nats(proc)


@contextlib.contextmanager
def _database(admin_url: str) -> Iterator[str]:
    url = create_database(admin_url)
    try:
        yield url
    finally:
        drop_database(admin_url, url)


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    with _database(pg_admin_url) as url:
        yield url


@pytest.fixture
def registry_factory(database_url: str, nats_url: str, tmp_path: Path) -> Iterator:
    """Make registry processes sharing this test's database (replicas, restarts)."""
    made: list[RegistryProcess] = []

    def make(nats: str | None = None, data_dir: Path | None = None, **env: str | None):
        proc = RegistryProcess(database_url, nats or nats_url, data_dir or tmp_path / "data", **env)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.stop()
    for stream in {(proc.env["CYP_NATS_URL"], proc.stream) for proc in made}:
        delete_stream(*stream)


@pytest.fixture
def registry(registry_factory) -> RegistryProcess:
    return registry_factory().start()


@pytest.fixture(scope="module")
def module_registry(
    pg_admin_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryProcess]:
    """One registry for a whole module of read-mostly tests."""
    with _database(pg_admin_url) as url:
        proc = RegistryProcess(url, nats_url, tmp_path_factory.mktemp("reg") / "data").start()
        try:
            yield proc
        finally:
            proc.stop()
            delete_stream(nats_url, proc.stream)


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[OwnNats]:
    """A private NATS this test may stop and restart (an outage), stopped at the end."""
    server = OwnNats(tmp_path / "own-nats")
    yield server
    server.stop()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    """A private Postgres this test may stop and restart (an outage), stopped at the end.
    Not under tmp_path: as root it runs as the user `pgserver`, and every pytest session
    that starts (other runs too) makes /tmp/pytest-of-<user> private again."""
    folder = Path(tempfile.mkdtemp(prefix="cyp-own-pg-"))
    server = OwnPostgres(folder / "pg")
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)
