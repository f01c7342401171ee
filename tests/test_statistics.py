"""A young registry's log and views get planner statistics as the log doubles
(workers/statistics.py), long before autovacuum's first look: loads and the runner's reads
then use the indexes instead of reading the whole log."""

from __future__ import annotations

import psycopg

from cyp_registry.wiring import eventsourcing_env
from domain.caller import Caller
from domain.registry import Registry
from migrations import migrate
from tests.support import wait_until
from tests.test_replay import catch_up
from workers.projector import ProjectionRunner
from workers.statistics import FIRST

WHO = Caller("analyst", "127.0.0.1")


def _analyzed(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT relname, analyze_count FROM pg_stat_user_tables"
            " WHERE relname IN ('registry_events', 'blob_links', 'tags')"
        ).fetchall()
    return dict(rows)


def test_the_runner_analyzes_the_young_log_and_views(database_url: str) -> None:
    migrate(database_url)
    app = Registry(env=eventsourcing_env(database_url))
    with psycopg.connect(database_url, autocommit=True) as conn:  # only the runner analyzes
        for table in ("registry_events", "blob_links", "tags"):
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    try:
        runner = ProjectionRunner(app, database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            for i in range(FIRST // 2 - 10):  # a link and, in the first, a repository each
                app.link_blob("young/app", f"sha256:{i:064x}", 1, WHO)
            catch_up(runner, conn)
            assert all(n == 0 for n in _analyzed(database_url).values())
            for i in range(FIRST // 2, FIRST + 10):
                app.link_blob("young/app", f"sha256:{i:064x}", 1, WHO)
            catch_up(runner, conn)
        wait_until(lambda: _analyzed(database_url).get("registry_events", 0) >= 1, 10)
        assert _analyzed(database_url)["blob_links"] >= 1
        assert runner.young.next > FIRST  # next time when the log has doubled
    finally:
        app.close()
