"""Follows the event log and keeps the views current: rows and positions in one transaction.

One runner is active per database (a Postgres advisory lock elects it), so several API
replicas or worker processes can all run one; the others stand by. After each batch the
runner sends `pg_notify('cyp_views', <position>)` inside the same transaction, which is how
a write learns that the views reached its position (read-your-writes, no polling).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError

from domain.errors import DatabaseUnavailable
from domain.registry import Registry
from projections.catalog import CHANNEL, VIEWS
from projections.view import View
from workers.statistics import YoungTables

log = logging.getLogger(__name__)

_LOCK_KEY = 0x6379700002
# Errors that mean Postgres is out of reach (the event store's, psycopg's, the API's gate).
DATABASE_LOST = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    OperationalError,
    InterfaceError,
    DatabaseUnavailable,
)


_DONE = (
    "WITH moved AS (UPDATE view_positions SET position = %s WHERE view = ANY(%s)"
    " AND position < %s) SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, %s)"
)


class ViewsBusy(Exception):
    """Another runner (a running server or worker) holds the views."""


class ProjectionRunner:
    def __init__(
        self,
        app: Registry,
        conninfo: str,
        views: Sequence[View] | None = None,
        batch_size: int = 500,
    ) -> None:
        self.app = app
        self.conninfo = conninfo
        self.views = list(views) if views is not None else list(VIEWS.values())
        self.batch_size = batch_size
        # The views' positions, read once per session: while this runner holds the lock,
        # nobody else moves them.
        self._positions: dict[str, int] | None = None
        # told the position the views reached after each batch has committed (this
        # process' read-your-writes waiter: no round trip through Postgres' notification)
        self.listeners: list[Callable[[int], None]] = []
        tables = [app.recorder.events_table_name]  # type: ignore[attr-defined]
        if app.snapshots is not None:
            tables.append(app.snapshots.recorder.events_table_name)  # type: ignore[attr-defined]
        self.young = YoungTables([*tables, *(t for v in self.views for t in v.tables)])

    # -- one step ----------------------------------------------------------------------------
    def positions(self, conn: psycopg.Connection[Any]) -> dict[str, int]:
        names = [v.name for v in self.views]
        with conn.transaction():
            conn.execute(
                "INSERT INTO view_positions (view, position)"
                " SELECT unnest(%s::text[]), 0 ON CONFLICT (view) DO NOTHING",
                (names,),
            )
            rows = conn.execute(
                "SELECT view, position FROM view_positions WHERE view = ANY(%s)", (names,)
            ).fetchall()
        return dict(rows)

    def step(self, conn: psycopg.Connection[Any]) -> int:
        """Project the next batch of events; returns how many were read."""
        if self._positions is None:
            self._positions = self.positions(conn)
            self.young.started_at(min(self._positions.values()))
        positions = self._positions
        start = min(positions.values())
        notifications = self.app.recorder.select_notifications(
            start=start, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        end = notifications[-1].id
        # One transaction, pipelined: the statements go out without waiting for each answer.
        with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
            to_event = self.app.mapper.to_domain_event
            items = [(to_event(n), n.id) for n in notifications]
            for view in self.views:
                # (views are independent: each reads only its own tables)
                mine = [item for item in items if item[1] > positions[view.name]]
                if not mine:
                    continue
                apply_batch = getattr(view, "apply_batch", None)
                if apply_batch is not None:  # set-based: a statement per run of a kind
                    apply_batch(cur, mine)
                else:
                    for event, position in mine:
                        view.apply(cur, event, position)
            # The positions, the waiters' wake-up (once per batch) and, as views are derived
            # data (rows and positions commit or vanish together, and a lost commit is
            # projected again), a commit that need not wait for the WAL flush: one statement.
            cur.execute(_DONE, (end, [v.name for v in self.views], end, CHANNEL, str(end)))
        for view in self.views:
            positions[view.name] = max(positions[view.name], end)
        for listener in self.listeners:
            listener(end)
        self.young.reached(conn, end)
        return len(notifications)

    # -- live --------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, autocommit=True)

    def _acquire(self, conn: psycopg.Connection[Any], stop: Callable[[], bool]) -> bool:
        while not stop():
            if conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()[0]:
                return True
            time.sleep(1.0)
        return False

    def run(self, stop: threading.Event) -> None:
        """Keep the views current until `stop` is set; survives database restarts."""
        while not stop.is_set():
            try:
                with self._connect() as conn:
                    self._positions = None
                    if not self._acquire(conn, stop.is_set):
                        return
                    conn.execute(f'LISTEN "{self.app.recorder.channel_name}"')
                    while not stop.is_set():
                        if self.step(conn) == self.batch_size:
                            continue
                        # Notifications that arrived during the step are kept in a backlog
                        # and returned at once, so none is missed between step and wait.
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            pass
            except DATABASE_LOST as exc:  # the database went away: retry, nothing is lost
                log.warning("projection runner waiting for the database (%s)", exc)
                stop.wait(1.0)
            except Exception:
                log.exception("projection runner failed; retrying")
                stop.wait(1.0)

    # -- rebuild -----------------------------------------------------------------------------
    def rebuild(self, progress: Callable[[int], None] | None = None, wait: float = 10.0) -> int:
        """Drop the views' rows and project the whole log again; returns events read."""
        deadline = time.monotonic() + wait
        with self._connect() as conn:
            if not self._acquire(conn, lambda: time.monotonic() > deadline):
                raise ViewsBusy("the views are being kept by a running server or worker")
            with conn.transaction():
                for view in self.views:
                    for table in view.tables:
                        conn.execute(f'TRUNCATE "{table}"')
                conn.execute(
                    "UPDATE view_positions SET position = 0 WHERE view = ANY(%s)",
                    ([v.name for v in self.views],),
                )
            self._positions = None
            total = 0
            while count := self.step(conn):
                total += count
                if progress:
                    progress(count)
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        return total
