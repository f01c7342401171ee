"""What every view module provides to the runner."""

from __future__ import annotations

from typing import Any, Protocol

import psycopg


class View(Protocol):
    name: str
    tables: tuple[str, ...]

    def apply(self, cur: psycopg.Cursor[Any], event: Any, position: int) -> None:
        """Turn one event into row changes (inside the runner's transaction).

        A view may also have `apply_batch(cur, items)`, items being (event, position) in log
        order: the runner then hands it a whole batch at once (projections.batch), and it
        must leave the rows `apply` of each in turn would."""
