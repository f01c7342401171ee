"""Aggregate ids from natural names (`uuid5` of e.g. `tag:myapp:latest`): two writers of the
same name address the same aggregate, so they conflict instead of creating two."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

_NS = uuid5(NAMESPACE_URL, "https://cyp-registry/aggregates")


def aggregate_id(*parts: str) -> UUID:
    return uuid5(_NS, ":".join(parts))
