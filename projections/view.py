"""What every view module provides to the runner."""

from __future__ import annotations

from typing import Any, Protocol

import psycopg


class View(Protocol):
    name: str
    tables: tuple[str, ...]

    def apply(self, cur: psycopg.Cursor[Any], event: Any, position: int) -> None:
        """Turn one event into row changes (inside the runner's transaction)."""
