"""The command-line contract operators rely on: --help, migrate."""

import os
import subprocess
import sys

import psycopg

from migrations import migration_files
from tests.support import ROOT, as_url


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CYP_")}
    return subprocess.run(
        [sys.executable, "-m", "cyp_registry.cli", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_documents_commands_and_settings():
    out = _cli("--help").stdout
    for word in (
        "serve",
        "worker",
        "migrate",
        "replay",
        "user",
        "CYP_DATABASE_URL",
        "CYP_NATS_URL",
        "CYP_DATA_DIR",
        "CYP_LOG_FORMAT",
        "CYP_IDLE_TIMEOUT",
    ):
        assert word in out
    serve = _cli("serve", "--help").stdout
    for option in ("--host", "--port", "--data-dir", "--workers"):
        assert option in serve


def test_an_unknown_log_format_is_refused(database_url):
    done = _cli("migrate", CYP_DATABASE_URL=as_url(database_url), CYP_LOG_FORMAT="xml")
    assert done.returncode != 0
    assert "CYP_LOG_FORMAT: 'xml' is neither text nor json" in done.stderr


def test_migrate_creates_the_views_once(database_url):
    url = as_url(database_url)
    for _ in range(2):  # idempotent
        done = _cli("migrate", CYP_DATABASE_URL=url, CYP_LOG_LEVEL="warning")
        assert done.returncode == 0, done.stderr
        assert "001_views.sql, 002_identity.sql" in done.stdout
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        applied = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    assert {
        "repositories",
        "manifests",
        "tags",
        "blob_links",
        "referrers",
        "history",
        "users",
        "login_failures",
        "view_positions",
        "relay_positions",
        "registry_events",
    } <= tables
    assert applied == len(migration_files())  # every numbered file, once


def test_unknown_command_is_refused():
    done = _cli("frobnicate")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_a_kid_that_begins_with_a_dash_is_a_kid(tmp_path):
    """Kids are base64url: one in four begins with '-', which argparse takes for an option."""
    for args in (["-PNtxMMvQ19s"], ["--data-dir", str(tmp_path), "-PNtxMMvQ19s"]):
        found = subprocess.run(
            [sys.executable, "-m", "cyp_registry.cli", "keys", "remove", *args]
            + ([] if "--data-dir" in args else ["--data-dir", str(tmp_path)]),
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert found.returncode == 1 and "no key -PNtxMMvQ19s" in found.stderr, found.stderr
