"""Whether Postgres answers: requests fail fast (503) while it does not.

Without this, every request of an outage waits for a pooled connection that cannot come (the
pools wait, and the event store retries each call ten times), so clients hang and then get a
500. Here the first request that loses its connection closes the gate: from then on every
database call raises `DatabaseUnavailable` at once (503 with `Retry-After`), and one probe per
half second tries a fresh connection; when one works, the pools drop the connections that died
and the gate opens again. Nothing needs a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio.to_thread
import psycopg

from domain.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

# SQLSTATE classes that mean the server is out of reach, not that a statement failed:
# 08 connection exception; 57P01-57P05 shutdown, crash, cannot connect now, database dropped.
_LOST = ("08", "57P")


def connection_lost(exc: BaseException | None) -> bool:
    """Whether an error (or the psycopg error it wraps) means the database is unreachable."""
    for _ in range(8):  # the chain of causes: the event store wraps psycopg's errors
        if exc is None:
            return False
        if isinstance(exc, psycopg.InterfaceError):
            return True
        if isinstance(exc, psycopg.OperationalError):  # also PoolTimeout: no connection came
            return exc.sqlstate is None or exc.sqlstate.startswith(_LOST)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return False


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class DatabaseGate:
    def __init__(self, conninfo: str = "", interval: float = 0.5) -> None:
        self.conninfo = conninfo
        self.interval = interval
        self.down = False
        self._recovery: list[Callable[[], Awaitable[Any]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._since = 0.0

    def on_recovery(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Run `action` (e.g. a pool's check) before the gate opens again."""
        self._recovery.append(action)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._loop = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def check(self) -> None:
        """Raise DatabaseUnavailable while the database is known to be out of reach."""
        if self.down:
            raise DatabaseUnavailable()

    def failed(self, exc: BaseException) -> None:
        """Note an error of a database call (from any thread): a lost connection closes the
        gate until a probe reaches the database again."""
        loop = self._loop
        if loop is None or self.down or not connection_lost(exc):
            return
        self.down = True
        self._since = time.monotonic()
        log.warning("database unavailable (%s): answering 503 until it is back", _first_line(exc))
        with contextlib.suppress(RuntimeError):  # the loop is closing: nothing left to answer
            loop.call_soon_threadsafe(self._watch)

    def _watch(self) -> None:
        if self._loop is not None and (self._task is None or self._task.done()):
            self._task = self._loop.create_task(self._until_back())

    async def _probe(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, connect_timeout=2
        ) as conn:
            await conn.execute("SELECT 1")

    async def _until_back(self) -> None:
        while True:
            try:
                await self._probe()
                for action in self._recovery:
                    await action()
                break
            except Exception as exc:
                log.debug("database still unavailable: %s", _first_line(exc))
                await asyncio.sleep(self.interval)
        self.down = False
        log.warning("database reachable again after %.1f s", time.monotonic() - self._since)


def guard_event_store(datastore: Any, gate: DatabaseGate, reconnect_for: float) -> None:
    """Put the gate in front of the event store's connections (eventsourcing's
    PostgresDatastore): while it is closed, a call fails at once with DatabaseUnavailable,
    which the store's own retries (ten, for OperationalError) let through; a lost connection
    closes it. Its pool gives up reconnecting after `reconnect_for` seconds instead of 5 min
    of backoff (which can delay the recovery by as long as the outage lasted), then grows
    again on demand; a recovery first drops its connections that died."""
    connection = datastore.get_connection

    @contextlib.contextmanager
    def get_connection() -> Iterator[Any]:
        gate.check()
        try:
            with connection() as conn:
                yield conn
        except Exception as exc:
            gate.failed(exc)
            raise

    datastore.get_connection = get_connection
    datastore.pool.reconnect_timeout = reconnect_for

    async def check_pool() -> None:
        await anyio.to_thread.run_sync(datastore.pool.check)

    gate.on_recovery(check_pool)
