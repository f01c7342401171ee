"""A connection kept only to answer /health about NATS (the relay's may be in another process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats

log = logging.getLogger(__name__)


class NatsProbe:
    def __init__(self, url: str) -> None:
        self.url = url
        self.nc: nats.NATS | None = None
        self._task: asyncio.Task[None] | None = None

    async def _quiet(self, exc: Exception) -> None:
        log.debug("nats probe: %s", exc)

    async def _connect(self) -> None:
        while self.nc is None:
            try:
                self.nc = await nats.connect(
                    self.url,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    error_cb=self._quiet,
                )
            except Exception:
                await asyncio.sleep(1.0)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect())

    async def ok(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
