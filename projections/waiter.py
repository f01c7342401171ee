"""Read-your-writes: wait until the views have reached a position of the event log.

Listens on the channel the projection runner notifies inside its transactions; LISTEN
is set up before the current position is read, so no notification falls in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from projections.runner import CHANNEL

log = logging.getLogger(__name__)


class PositionWaiter:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.position = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    cur = await conn.execute(
                        "SELECT coalesce(min(position), 0) FROM view_positions"
                    )
                    self._advance((await cur.fetchone())[0])
                    self._ready.set()
                    async for notify in conn.notifies():
                        self._advance(int(notify.payload))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("lost the views' notification channel; reconnecting", exc_info=True)
                await asyncio.sleep(0.5)

    def _advance(self, position: int) -> None:
        if position <= self.position:
            return
        self.position = position
        still = []
        for target, future in self._waiters:
            if target <= position:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still

    async def wait(self, position: int | None, timeout: float = 10.0, warn: bool = True) -> bool:
        """True once the views reached `position`; False after `timeout` seconds (a live
        stream waiting for the next event passes `warn=False`: a quiet log is no fault)."""
        if position is None or self.position >= position:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((position, future))
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            if warn:
                log.warning("views did not reach position %s within %ss", position, timeout)
            return False
        finally:
            if future.cancelled():  # timed out, or the caller went: forget it
                self._waiters = [w for w in self._waiters if w[1] is not future]
