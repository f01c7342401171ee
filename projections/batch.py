"""Set-based projection of a batch of events: a view names the kind of change each event
makes (`Kinds`); consecutive events of one kind become one statement over arrays
(`INSERT … SELECT … FROM json_to_recordset(…)`, `DELETE … WHERE (…) IN (SELECT …)`),
and a change of kind starts a new one, so the order of the log is kept: a link then an
unlink of one key in one batch ends unlinked. Events a view ignores break no run.

A statement must not change one row twice (Postgres refuses `ON CONFLICT DO UPDATE` on a key
proposed twice, and an `UPDATE … FROM` applies one of the duplicates, any one): runs are
narrowed to one event per key first, the first where the change is `DO NOTHING`, the last
where each event overwrites the row (`first_by`, `last_by`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any

import msgspec

Item = tuple[Any, int]  # (event, its position in the log)
_encode = msgspec.json.Encoder().encode


class Kinds:
    """Event class -> the kind of change it makes to a view (classes absent: ignored)."""

    def __init__(self, kinds: dict[type, str]) -> None:
        self._kinds = kinds
        self._found: dict[type, str | None] = {}

    def __call__(self, event: Any) -> str | None:
        cls = type(event)
        try:
            return self._found[cls]
        except KeyError:
            found = next((self._kinds[c] for c in cls.__mro__ if c in self._kinds), None)
            self._found[cls] = found
            return found


def runs(
    items: Iterable[Item], kind_of: Callable[[Any], str | None]
) -> Iterator[tuple[str, list[Item]]]:
    """(kind, items) of each run of consecutive events of one kind, in log order."""
    kind, run = "", []
    for item in items:
        found = kind_of(item[0])
        if found is None:
            continue
        if found != kind and run:
            yield kind, run
            run = []
        kind = found
        run.append(item)
    if run:
        yield kind, run


def first_by(items: Sequence[Item], key: Callable[[Any], Hashable]) -> list[Item]:
    """One item per key, the first of each (in log order)."""
    seen: dict[Hashable, Item] = {}
    for item in items:
        seen.setdefault(key(item[0]), item)
    return list(seen.values())


def last_by(items: Sequence[Item], key: Callable[[Any], Hashable]) -> list[Item]:
    """One item per key, the last of each."""
    return list({key(item[0]): item for item in items}.values())


class Rows:
    """Rows a statement reads as one JSON parameter: `sql` is the record set to select from,
    `params(rows)` its parameters (rows as tuples in the order of the columns). One JSON text
    costs a few microseconds to make where psycopg takes tens to dump an array, and Postgres
    parses it in C. The LIMIT tells the planner how many rows come (it would guess 100 from
    the function, and join a view's table of a few thousand rows by scanning all of it)."""

    def __init__(self, columns: str, alias: str = "u") -> None:
        self.names = tuple(column.split()[0] for column in columns.split(","))
        self.sql = (
            f"(SELECT * FROM json_to_recordset(%s::json) AS r({columns}) LIMIT %s) AS {alias}"
        )

    def params(self, rows: Iterable[Sequence[Any]]) -> tuple[str, int]:
        names = self.names
        found = [dict(zip(names, row, strict=True)) for row in rows]
        return _encode(found).decode(), len(found)


def apply_one(
    apply_batch: Callable[[Any, Sequence[Item]], None],
) -> Callable[[Any, Any, int], None]:
    """The per-event `apply` of a view that projects batches."""

    def apply(cur: Any, event: Any, position: int) -> None:
        apply_batch(cur, [(event, position)])

    return apply
