"""Purges abandoned upload sessions while the API runs (and once at its start): a session
nobody wrote to for the TTL loses its partial file and its in-memory hash state, so clients
killed mid-upload neither fill the disk nor hold memory, nor count against the caps."""

from __future__ import annotations

import asyncio
import logging

import anyio.to_thread

from storage.filesystem import FilesystemStore

log = logging.getLogger(__name__)


async def purge_abandoned_uploads(store: FilesystemStore, ttl: float, interval: float) -> None:
    """Every `interval` seconds, until cancelled."""
    while True:
        try:
            purged = await anyio.to_thread.run_sync(store.purge_stale_uploads, ttl)
        except OSError as exc:  # the blobs' disk is unwell: /health says so; try again later
            log.warning("could not purge abandoned uploads: %s", exc)
        else:
            if purged:
                log.info("purged %d upload sessions untouched for %ss", purged, ttl)
        await asyncio.sleep(interval)
