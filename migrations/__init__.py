"""Numbered SQL files, applied once each, in order, under an advisory lock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources
from typing import Any

import psycopg

_LOCK_KEY = 0x6379700001  # any constant shared by every process of this registry


def migration_files() -> list[tuple[str, str]]:
    files = [f for f in resources.files(__name__).iterdir() if f.name.endswith(".sql")]
    return [(f.name, f.read_text()) for f in sorted(files, key=lambda f: f.name)]


@contextlib.contextmanager
def schema_lock(conninfo: str) -> Iterator[psycopg.Connection[Any]]:
    """Hold the schema lock: one process at a time changes the schema. Also for the event
    store's own tables, which eventsourcing creates on start: Postgres refuses two
    concurrent `CREATE TYPE` of one name (replicas starting together on a new database)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def migrate(conninfo: str) -> list[str]:
    """Apply the migrations not applied yet; returns their names."""
    applied: list[str] = []
    with schema_lock(conninfo) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
        for name, sql in migration_files():
            if name in done:
                continue
            with conn.transaction():
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
            applied.append(name)
    return applied
