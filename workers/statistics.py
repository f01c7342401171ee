"""Fresh planner statistics for a young database.

Postgres plans with the statistics ANALYZE gathered; autovacuum gathers them a minute or more
after a table changes, and before that the planner takes the event log and the views for
nearly empty: it reads the whole event log for every aggregate a command loads and every
batch the runner reads (measured on a new registry: 1,700 full scans per 200 images pushed,
the Postgres CPU per image growing with every image). The projection runner (one per
database) analyzes the log and the views each time the log has doubled since it last did,
from 500 events on; past a million events autovacuum has long taken over."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

FIRST = 500
LAST = 1_000_000


class YoungTables:
    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = list(dict.fromkeys(tables))
        self.next = FIRST

    def started_at(self, position: int) -> None:
        """The runner starts at `position`: the next analysis when the log has doubled."""
        self.next = max(FIRST, 2 * position)

    def reached(self, conn: psycopg.Connection[Any], position: int) -> None:
        """Analyze the tables if the log reached the next threshold (outside a transaction)."""
        if position < self.next or self.next > LAST:
            return
        self.next = 2 * position
        for table in self.tables:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        log.debug("analyzed %d tables at position %d", len(self.tables), position)
