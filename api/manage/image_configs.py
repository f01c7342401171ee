"""What /api/images shows of an image's config blob (created, os, architecture, labels),
read once per digest (a config never changes) and kept in a cache bounded in bytes."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import anyio.to_thread
import msgspec

from api.services import Services

MAX_CONFIG = 1024 * 1024  # image configs are a few KiB; a larger blob is not read for details


class ConfigFacts(msgspec.Struct, frozen=True):
    created: str | None = None
    os: str | None = None
    architecture: str | None = None
    labels: dict[str, str] = {}

    def weight(self) -> int:
        """About what it holds, in characters: its cost in the cache."""
        texts = (self.created, self.os, self.architecture, *self.labels, *self.labels.values())
        return 64 + sum(len(text or "") for text in texts)


class _ConfigCache:
    """Facts of image configs by digest (never stale), the most recently used first kept,
    within a budget: the labels of one config may take up to MAX_CONFIG."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.weight = 0
        self.items: OrderedDict[str, ConfigFacts] = OrderedDict()

    def get(self, digest: str) -> ConfigFacts | None:
        found = self.items.get(digest)
        if found is not None:
            self.items.move_to_end(digest)
        return found

    def put(self, digest: str, facts: ConfigFacts) -> None:
        if facts.weight() > self.budget or digest in self.items:
            return
        self.items[digest] = facts
        self.weight += facts.weight()
        while self.weight > self.budget:
            self.weight -= self.items.popitem(last=False)[1].weight()


_CONFIGS = _ConfigCache(16 * 1024 * 1024)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parse_config(data: bytes | None) -> ConfigFacts:
    try:
        config = json.loads(data) if data else None
    except (ValueError, RecursionError):
        config = None
    if not isinstance(config, dict):
        return ConfigFacts()
    inner = config.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    labels = labels if isinstance(labels, dict) else {}
    labels = {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}
    return ConfigFacts(
        _text(config.get("created")),
        _text(config.get("os")),
        _text(config.get("architecture")),
        labels,
    )


def _read_config(services: Services, digest: str) -> ConfigFacts:
    size = services.store.size(digest)
    if size is None or size > MAX_CONFIG:
        return ConfigFacts()
    return _parse_config(services.store.read_bytes(digest))


async def config_facts(services: Services, descriptor: dict[str, Any] | None) -> ConfigFacts:
    if not descriptor or not isinstance(descriptor.get("digest"), str):
        return ConfigFacts()
    digest = descriptor["digest"]
    found = _CONFIGS.get(digest)
    if found is None:
        found = await anyio.to_thread.run_sync(_read_config, services, digest)
        _CONFIGS.put(digest, found)
    return found
