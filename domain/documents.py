"""Events as plain documents: what the history view stores and the relay publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic"}
IDENTITY = ("repository", "tag", "digest")


def event_kind(event: Any) -> str:
    return getattr(type(event), "kind", type(event).__qualname__)


def event_fields(event: Any) -> dict[str, Any]:
    """The event's own fields, without the library's envelope and without the fields its
    class names in `secret_fields` (password hashes): those stay in the event store."""
    hidden = _ENVELOPE.union(getattr(type(event), "secret_fields", ()))
    return {k: v for k, v in vars(event).items() if k not in hidden}


def event_document(event: Any, position: int) -> dict[str, Any]:
    timestamp: datetime = event.timestamp
    return {
        "type": event_kind(event),
        "position": position,
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "timestamp": timestamp.isoformat(),
        **event_fields(event),
    }
