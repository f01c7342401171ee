"""Publishes every stored event, in log order, to a JetStream stream.

Each message carries `Nats-Msg-Id: <aggregate id>:<version>` so a resend after a crash is
deduplicated by JetStream, and `Cyp-Position: <notification id>` so the relay can resume
from the stream itself (the stream's last message is the resume point; the position kept
in Postgres, advanced only after the publish was acknowledged, is for monitoring). NATS
being down delays publishing; it never loses or reorders an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import anyio.to_thread
import msgspec
import nats
import psycopg
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from domain.documents import event_document

log = logging.getLogger(__name__)


class Relay:
    def __init__(
        self,
        app: Any,
        conninfo: str,
        nats_url: str,
        stream: str = "CYP_EVENTS",
        subject_prefix: str = "cyp.events",
        batch_size: int = 500,
    ) -> None:
        self.app = app
        self.conninfo = conninfo
        self.nats_url = nats_url
        self.stream = stream
        self.prefix = subject_prefix
        self.batch_size = batch_size
        self.position = 0
        self.nc: nats.NATS | None = None
        self._wake = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def _error(self, exc: Exception) -> None:
        log.debug("nats: %s", exc)

    async def connect(self) -> None:
        self.nc = await nats.connect(
            self.nats_url,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
            error_cb=self._error,
            connect_timeout=2,
        )

    async def _ensure_stream(self, js: Any) -> None:
        config = StreamConfig(
            name=self.stream, subjects=[f"{self.prefix}.>"], duplicate_window=600.0
        )
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(config)

    async def _stream_position(self, js: Any) -> int:
        info = await js.stream_info(self.stream)
        if not info.state.last_seq:
            return 0
        try:
            msg = await js.get_msg(self.stream, info.state.last_seq)
        except NotFoundError:
            return 0
        return int((msg.headers or {}).get("Cyp-Position", 0))

    async def _stored_position(self, conn: psycopg.AsyncConnection[Any]) -> int:
        cur = await conn.execute(
            "SELECT position FROM relay_positions WHERE name = %s", (self.stream,)
        )
        row = await cur.fetchone()
        return row[0] if row else 0

    async def _store_position(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(
            "INSERT INTO relay_positions (name, position) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
            (self.stream, self.position),
        )

    async def publish_pending(self, js: Any, conn: psycopg.AsyncConnection[Any]) -> int:
        notifications = await anyio.to_thread.run_sync(
            lambda: self.app.recorder.select_notifications(
                start=self.position, limit=self.batch_size, inclusive_of_start=False
            )
        )
        for n in notifications:
            event = self.app.mapper.to_domain_event(n)
            document = event_document(event, n.id)
            await js.publish(
                f"{self.prefix}.{document['type']}",
                msgspec.json.encode(document),
                timeout=5,
                headers={
                    "Nats-Msg-Id": f"{n.originator_id}:{n.originator_version}",
                    "Cyp-Position": str(n.id),
                },
            )
            self.position = n.id
        if notifications:
            await self._store_position(conn)
        return len(notifications)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set. Retries through NATS and Postgres outages."""
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    while not stop.is_set():
                        # One active relay per stream (replicas stand by).
                        cur = await conn.execute(
                            "SELECT pg_try_advisory_lock(hashtext(%s))", (f"relay:{self.stream}",)
                        )
                        if (await cur.fetchone())[0]:
                            break
                        await _sleep_or_stop(stop, 1.0)
                    listener = asyncio.create_task(self._listen())
                    try:
                        await self._publish_loop(conn, stop)
                    finally:
                        listener.cancel()
            except Exception as exc:
                log.warning("relay interrupted (%s); retrying", exc)
                await _sleep_or_stop(stop, 1.0)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def _listen(self) -> None:
        """Wake the publish loop whenever an event is stored (own connection: LISTEN blocks)."""
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
            await conn.execute(f'LISTEN "{self.app.recorder.channel_name}"')
            async for _ in conn.notifies():
                self._wake.set()

    async def _publish_loop(self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event) -> None:
        synced = False
        while not stop.is_set():
            try:
                if self.nc is None:
                    await self.connect()
                js = self.nc.jetstream()
                if not synced:
                    await self._ensure_stream(js)
                    # The stream itself says what it holds: a stream that lost messages
                    # (recreated, purged) gets them again rather than a silent gap.
                    stored = await self._stored_position(conn)
                    self.position = await self._stream_position(js)
                    if self.position < stored:
                        log.warning(
                            "stream %s ends at %s but %s were relayed; republishing",
                            self.stream,
                            self.position,
                            stored,
                        )
                    synced = True
                self._wake.clear()
                if await self.publish_pending(js, conn) == self.batch_size:
                    continue
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                # NATS is down or slow: resume from the stream's last message once it is back.
                log.info("relay waiting for NATS: %r", exc)
                synced = False
                await _sleep_or_stop(stop, 0.5)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
