"""GET /api/system/info: the guide's §Q3 — version, uptime, storage used (overall, per
namespace, blobs, bytes saved by sharing layers), the event store's size and head, how far
each view and the relay lag behind it, and the health of each component.

Storage figures come from the storage view's counters (a few rows, whatever the registry's
size). A user who is not a system admin sees the per-namespace figures and counts of the
namespaces they may read only.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, get

from api.auth.guards import api_caller, readable_namespaces
from api.health import components, relay_behind
from api.manage.envelope import Envelope, ok
from api.manage.openapi import errors
from api.services import Services
from projections import storage, system


class NamespaceStorage(msgspec.Struct):
    namespace: str
    blobs: int
    bytes: int


class Disk(msgspec.Struct):
    """The filesystem of the blob store."""

    total: int
    used: int
    free: int


class Storage(msgspec.Struct):
    bytes: int  # distinct blobs and manifests, each once
    blobs: int
    referenced_bytes: int  # what every repository's references add up to
    saved_by_sharing: int  # referenced_bytes - bytes
    namespaces: list[NamespaceStorage]
    disk: Disk | None


class EventStoreInfo(msgspec.Struct):
    head_position: int
    bytes: int
    events_estimate: int


class Lag(msgspec.Struct):
    name: str
    position: int
    lag: int  # positions behind the head (an upper bound: positions may have gaps)


class Counts(msgspec.Struct):
    repositories: int
    tags: int


class SystemInfo(msgspec.Struct):
    version: str
    started_at: datetime
    uptime_seconds: float
    status: str  # healthy, degraded (the relay lags, as /health) or unhealthy (a component down)
    components: dict[str, bool]
    counts: Counts
    storage: Storage
    event_store: EventStoreInfo
    views: list[Lag]
    relay: list[Lag]


def _disk(root: Any) -> Disk | None:
    try:
        usage = shutil.disk_usage(root)
    except OSError:
        return None
    return Disk(usage.total, usage.used, usage.free)


def _lags(positions: dict[str, int], head: int) -> list[Lag]:
    return [Lag(name, pos, max(head - pos, 0)) for name, pos in positions.items()]


async def system_facts(request: Request[Any, Any, Any]) -> SystemInfo:
    """System info as this request's caller may see it (the web UI's dashboard shows the
    same)."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    readable = await readable_namespaces(request, caller)
    health = await components(services)
    lagging = await relay_behind(services, request.app.state.started_at)
    table = services.registry.recorder.events_table_name
    events = await services.query(system.event_store, table)
    views = await services.query(system.positions, "view_positions")
    relay = await services.query(system.positions, "relay_positions")
    totals = await services.query(storage.totals)
    namespaces = await services.query(storage.by_namespace, readable)
    repositories, tags = await services.query(system.counts, readable)
    disk = await anyio.to_thread.run_sync(_disk, services.store.root)
    started = request.app.state.started_at
    return SystemInfo(
        version=services.version,
        started_at=datetime.fromtimestamp(started, UTC),
        uptime_seconds=round(time.time() - started, 3),
        status="unhealthy" if not all(health.values()) else "degraded" if lagging else "healthy",
        components=health,
        counts=Counts(repositories, tags),
        storage=Storage(
            bytes=totals.bytes,
            blobs=totals.blobs,
            referenced_bytes=totals.referenced,
            saved_by_sharing=totals.referenced - totals.bytes,
            namespaces=[NamespaceStorage(*row) for row in namespaces],
            disk=disk,
        ),
        event_store=EventStoreInfo(events.head, events.bytes, events.events),
        views=_lags(views, events.head),
        relay=_lags(relay, events.head),
    )


@get("/api/system/info", tags=["system"], responses=errors())
async def system_info(request: Request[Any, Any, Any]) -> Response[Envelope[SystemInfo]]:
    """What runs, how big it is, how current its views are, and whether it is healthy."""
    return ok(await system_facts(request))


route_handlers = [system_info]
