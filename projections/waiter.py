"""Read-your-writes: wait until the views have reached a position of the event log.

Listens on the channel the projection runner notifies inside its transactions; LISTEN
is set up before the current position is read, so no notification falls in between. When the
channel is lost (Postgres went away), the writes waiting are let go at once (their events are
stored; only the views' confirmation is missing), and the channel is set up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from projections.catalog import CHANNEL

log = logging.getLogger(__name__)


class PositionWaiter:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.position = 0
        # (position, future): True once the views reached it, False if the channel was lost
        self._waiters: list[tuple[int, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        lost = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    cur = await conn.execute(
                        "SELECT coalesce(min(position), 0) FROM view_positions"
                    )
                    self._advance((await cur.fetchone())[0])
                    self._ready.set()
                    if lost:
                        log.warning("the views' notification channel is back")
                        lost = False
                    async for notify in conn.notifies():
                        self._advance(int(notify.payload))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not lost:  # once per outage, without a trace: the reason is the message
                    log.warning("lost the views' notification channel (%s); reconnecting", exc)
                    lost = True
                self._release()
                await asyncio.sleep(0.5)

    def projected(self, position: int) -> None:
        """From a projection runner of this process (its thread): the views reached
        `position`. The writes waiting for it go now, not when Postgres' notification of
        the same comes back (which still moves the others' waiters, and this one's again)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._advance, position)

    def _release(self) -> None:
        """Let every waiting write go unconfirmed: no notification can come for now."""
        for _, future in self._waiters:
            if not future.done():
                future.set_result(False)
        self._waiters = []

    def _advance(self, position: int) -> None:
        if position <= self.position:
            return
        self.position = position
        still = []
        for target, future in self._waiters:
            if target <= position:
                if not future.done():
                    future.set_result(True)
            else:
                still.append((target, future))
        self._waiters = still

    async def wait(self, position: int | None, timeout: float = 10.0, warn: bool = True) -> bool:
        """True once the views reached `position`; False after `timeout` seconds (a live
        stream waiting for the next event passes `warn=False`: a quiet log is no fault)."""
        if position is None or self.position >= position:
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append((position, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            if warn:
                log.warning("views did not reach position %s within %ss", position, timeout)
            return False
        finally:
            if future.cancelled():  # timed out, or the caller went: forget it
                self._waiters = [w for w in self._waiters if w[1] is not future]
