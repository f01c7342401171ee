"""Starting and stopping the processes that follow the log: the projection runner (a
thread: eventsourcing is synchronous) and the relay (a task on the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from workers.projector import ProjectionRunner
from workers.relay import Relay


class Workers:
    def __init__(self, runner: ProjectionRunner, relay: Relay) -> None:
        self.runner = runner
        self.relay = relay
        self._stop_thread = threading.Event()
        self._stop_async: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._thread = threading.Thread(
            target=self.runner.run, args=(self._stop_thread,), name="projections", daemon=True
        )
        self._thread.start()
        self._stop_async = asyncio.Event()
        self._task = asyncio.create_task(self.relay.run(self._stop_async))

    async def stop(self) -> None:
        self._stop_thread.set()
        if self._stop_async is not None:
            self._stop_async.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
