"""Events as plain documents: what the history view stores and the relay publishes."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

_ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic"}
IDENTITY = ("repository", "tag", "digest")
# The keys of a document that say which event it is: never left out of a bounded one.
DOCUMENT_KEYS = ("type", "position", "aggregate_id", "version", "timestamp")

_encode = msgspec.json.Encoder().encode


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


class Bounded(NamedTuple):
    document: dict[str, Any]
    json: bytes  # the document as compact JSON, at most the limit asked for


def bounded(document: dict[str, Any], limit: int, keep: tuple[str, ...] = ()) -> Bounded | None:
    """`document` as JSON of at most `limit` bytes. When it is larger, its largest fields
    (never those in `keep`) are left out, largest first, until it fits; the result then says
    `"truncated": true` and lists each field left out under `omitted` with the sha256 and
    the size in bytes of the field's JSON (and `count`, the items of a list or object), so a
    reader knows to read the whole event from the event store. None: it cannot fit even
    with every other field left out."""
    data = _encode(document)
    if len(data) <= limit:
        return Bounded(document, data)
    encoded = {k: _encode(v) for k, v in document.items() if k not in keep}
    omitted: dict[str, dict[str, Any]] = {}
    smaller = {**document, "truncated": True, "omitted": omitted}
    for key in sorted(encoded, key=lambda k: len(encoded[k]), reverse=True):
        raw, value = encoded[key], smaller.pop(key)
        omitted[key] = {"digest": "sha256:" + hashlib.sha256(raw).hexdigest(), "size": len(raw)}
        if isinstance(value, list | dict):
            omitted[key]["count"] = len(value)
        data = _encode(smaller)
        if len(data) <= limit:
            return Bounded(smaller, data)
    return None
