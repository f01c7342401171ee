"""Keyset pagination: a page ends at a row's sort key; the next page starts after it. The
key travels as an opaque cursor (base64 JSON of the sort, the order and the key), so deep
pages cost what the first one does (no OFFSET)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

INTEGER_COLUMNS = frozenset({"size", "position"})
TIME_COLUMNS = frozenset({"updated_at"})


def encode(sort: str, order: str, values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([sort, order, *plain], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _value(column: str, value: Any) -> Any:
    """The key value for `column`, or None if the cursor's value cannot be one."""
    if column in INTEGER_COLUMNS:
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
        return value if ok else None
    if not isinstance(value, str) or "\x00" in value or len(value) > 1024:
        return None
    if column in TIME_COLUMNS:
        try:
            found = datetime.fromisoformat(value)
        except ValueError:
            return None
        return found if found.tzinfo is not None else None
    return value


def decode(text: str, sort: str, order: str, columns: Sequence[str]) -> tuple[Any, ...] | None:
    """The key a cursor holds, if it is one of ours for this sort and order (else None)."""
    try:
        found = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):
        return None
    if not isinstance(found, list) or found[:2] != [sort, order]:
        return None
    values = found[2:]
    if len(values) != len(columns):
        return None
    key = tuple(_value(c, v) for c, v in zip(columns, values, strict=True))
    return None if any(v is None for v in key) else key


def clause(columns: Sequence[str], order: str) -> tuple[str, str]:
    """(the condition "after the key", the ORDER BY list) for these key columns."""
    op, direction = (">", "ASC") if order == "asc" else ("<", "DESC")
    after = f"({', '.join(columns)}) {op} ({', '.join(['%s'] * len(columns))})"
    return after, ", ".join(f"{c} {direction}" for c in columns)
