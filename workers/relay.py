"""Publishes every stored event, in log order, to a JetStream stream.

Each message carries `Nats-Msg-Id: <aggregate id>:<version>` so a resend after a crash is
deduplicated by JetStream, and `Cyp-Position: <notification id>`. Its body is the event's
document (domain.documents), bounded to what the server takes (`max_payload`, and the
stream's `max_msg_size`): a larger one leaves its largest fields out, listing their digest
and size (`"truncated": true`); the whole event stays in the event store. So no event stops
the ones behind it.

The resume point is the checkpoint in Postgres (relay_positions: the position and the stream
sequence of its message, stored only after the publish was acknowledged), never what the
stream's last message claims: anyone with NATS access can publish a message with any
`Cyp-Position`, or none. The stream is only asked whether it really holds the checkpoint's
event (its message's headers name that event); the events published after it before a crash
are found by walking on from there, foreign messages skipped. A stream that lost messages
(purged, recreated) gets them again from its last event of ours; JetStream drops a resend
whose id it still remembers (a purged message, within `duplicate_window`), so an answer
"duplicate" counts only when the stream holds that message, else the event is sent again
until it lands. NATS being down delays publishing; it never loses or reorders an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, NamedTuple

import anyio.to_thread
import nats
import psycopg
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NotFoundError
from psycopg import sql

from domain.documents import DOCUMENT_KEYS, bounded, event_document
from domain.registry import Registry

log = logging.getLogger(__name__)

HEADER_ROOM = 512  # the headers count against max_payload too; ours take ~120 bytes
SCAN_LIMIT = 10_000  # messages looked at, at most, to find our events in the stream
HEARTBEAT = 1.0  # seconds between `caught_up_at` updates while there is nothing to publish
MESSAGE_TOO_LARGE = 10054  # JetStream: message size exceeds the stream's max_msg_size


class NotHeld(Exception):
    """JetStream took a message as a duplicate of one it does not hold (any more): its
    dedupe window remembers the id of a purged message, or of a foreign one published under
    our id. The event is sent again until the stream holds it (at most `duplicate_window`)."""

    def __init__(self, position: int) -> None:
        super().__init__(f"event {position} was dropped as a duplicate of a message not held")
        self.position = position


class Mark(NamedTuple):
    position: int  # the event's notification id
    seq: int | None  # the stream sequence of its message (None: not known)


class Relay:
    def __init__(
        self,
        app: Registry,
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
        self.seq: int | None = None  # stream sequence of the message at `position`
        self.nc: nats.NATS | None = None
        self._max_msg_size = -1  # the stream's own limit (-1: none)
        self._beat = 0.0  # monotonic time `caught_up_at` was last stored
        self._not_held: int | None = None  # an event the stream dropped, being sent again
        self._wake = asyncio.Event()
        self._events = sql.Identifier(app.recorder.events_table_name)

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
            info = await js.stream_info(self.stream)
        except NotFoundError:
            info = await js.add_stream(config)
        self._max_msg_size = info.config.max_msg_size or -1

    def payload_limit(self) -> int:
        """The most bytes a document may take: the server's max_payload (from its INFO; 1 MiB
        by default) or the stream's max_msg_size, less room for the headers."""
        assert self.nc is not None
        limit = self.nc.max_payload
        if self._max_msg_size > 0:
            limit = min(limit, self._max_msg_size)
        return limit - HEADER_ROOM

    # -- the checkpoint in Postgres ---------------------------------------------------------
    async def _checkpoint(self, conn: psycopg.AsyncConnection[Any]) -> Mark:
        cur = await conn.execute(
            "SELECT position, stream_seq FROM relay_positions WHERE name = %s", (self.stream,)
        )
        row = await cur.fetchone()
        return Mark(*row) if row else Mark(0, None)

    async def _store_position(
        self, conn: psycopg.AsyncConnection[Any], caught_up: bool = False
    ) -> None:
        await conn.execute(
            "INSERT INTO relay_positions (name, position, stream_seq, caught_up_at)"
            " VALUES (%s, %s, %s, CASE WHEN %s THEN now() END) ON CONFLICT (name) DO UPDATE"
            " SET position = EXCLUDED.position, stream_seq = EXCLUDED.stream_seq,"
            " caught_up_at = coalesce(EXCLUDED.caught_up_at, relay_positions.caught_up_at)",
            (self.stream, self.position, self.seq, caught_up),
        )
        if caught_up:
            self._beat = time.monotonic()

    async def _msg_ids(
        self, conn: psycopg.AsyncConnection[Any], after: int, limit: int
    ) -> list[tuple[int, str]]:
        """(position, Nats-Msg-Id) of the stored events after `after`, in log order."""
        cur = await conn.execute(
            sql.SQL(
                "SELECT notification_id, originator_id::text || ':' || originator_version"
                " FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
            ).format(self._events),
            (after, limit),
        )
        return [(n, msg_id) for n, msg_id in await cur.fetchall()]

    async def _msg_id_at(self, conn: psycopg.AsyncConnection[Any], position: int) -> str | None:
        cur = await conn.execute(
            sql.SQL(
                "SELECT originator_id::text || ':' || originator_version"
                " FROM {} WHERE notification_id = %s"
            ).format(self._events),
            (position,),
        )
        row = await cur.fetchone()
        return row[0] if row else None

    # -- what the stream holds --------------------------------------------------------------
    async def _claim(self, js: Any, seq: int) -> tuple[int, str] | None:
        """(Cyp-Position, Nats-Msg-Id) the message at `seq` claims; None: no such message,
        or not in our form."""
        try:
            msg = await js.get_msg(self.stream, seq)
        except NotFoundError:
            return None
        headers = msg.headers or {}
        position, msg_id = headers.get("Cyp-Position", ""), headers.get("Nats-Msg-Id")
        if not (position.isascii() and position.isdigit() and len(position) <= 18 and msg_id):
            return None
        return int(position), msg_id

    async def _ours(self, js: Any, conn: psycopg.AsyncConnection[Any], seq: int) -> int | None:
        """The position of the event the message at `seq` is, if it is one of ours: its
        Cyp-Position names a stored event whose Nats-Msg-Id it carries."""
        claim = await self._claim(js, seq)
        if claim is None or await self._msg_id_at(conn, claim[0]) != claim[1]:
            return None
        return claim[0]

    async def _published_after(
        self, js: Any, conn: psycopg.AsyncConnection[Any], mark: Mark, last_seq: int
    ) -> Mark:
        """The events published after `mark` before the relay stopped (acknowledged, not
        yet checkpointed: at most a batch), walking on in the stream; foreign messages and
        anything but the log's next event are passed over."""
        assert mark.seq is not None
        expected = await self._msg_ids(conn, mark.position, self.batch_size + 1)
        found = 0
        for seq in range(mark.seq + 1, min(last_seq, mark.seq + SCAN_LIMIT) + 1):
            if found == len(expected):
                break
            if await self._claim(js, seq) == expected[found]:
                mark = Mark(expected[found][0], seq)
                found += 1
        return mark

    async def _last_of_ours(self, js: Any, conn: psycopg.AsyncConnection[Any], state: Any) -> Mark:
        """The stream's last message that is one of our events (Mark(0, None): none)."""
        if not state.messages:
            return Mark(0, None)
        lowest = max(state.first_seq, state.last_seq - SCAN_LIMIT + 1)
        for seq in range(state.last_seq, lowest - 1, -1):
            position = await self._ours(js, conn, seq)
            if position is not None:
                return Mark(position, seq)
        if lowest > state.first_seq:
            raise LookupError(f"none of the last {SCAN_LIMIT} messages is one of our events")
        return Mark(0, None)

    async def resume_point(self, js: Any, conn: psycopg.AsyncConnection[Any]) -> Mark:
        """Where to publish on from: the Postgres checkpoint when the stream holds its event,
        else (a stream that lost messages, or a checkpoint without its message) the stream's
        last event of ours."""
        checkpoint = await self._checkpoint(conn)
        state = (await js.stream_info(self.stream)).state
        if (
            checkpoint.seq is not None
            and state.first_seq <= checkpoint.seq <= state.last_seq
            and await self._ours(js, conn, checkpoint.seq) == checkpoint.position
        ):
            return await self._published_after(js, conn, checkpoint, state.last_seq)
        try:
            last = await self._last_of_ours(js, conn, state)
        except LookupError as exc:
            log.warning("stream %s: %s; resuming from %s", self.stream, exc, checkpoint.position)
            return Mark(checkpoint.position, None)
        if last.position < checkpoint.position:
            log.warning(
                "stream %s holds our events up to %s but %s were relayed; republishing",
                self.stream,
                last.position,
                checkpoint.position,
            )
        return last

    # -- publishing -------------------------------------------------------------------------
    async def _publish(self, js: Any, notification: Any) -> None:
        event = self.app.mapper.to_domain_event(notification)
        document = event_document(event, notification.id)
        headers = {
            "Nats-Msg-Id": f"{notification.originator_id}:{notification.originator_version}",
            "Cyp-Position": str(notification.id),
        }
        limit = self.payload_limit()
        while (fitted := bounded(document, limit, keep=DOCUMENT_KEYS)) is not None:
            if fitted.document is not document:
                log.info(
                    "event %s (%s) is too large for a message of %d bytes: published without"
                    " %s (the event store has it whole)",
                    notification.id,
                    document["type"],
                    limit,
                    ", ".join(fitted.document["omitted"]),
                )
            try:
                ack = await js.publish(
                    f"{self.prefix}.{document['type']}", fitted.json, timeout=5, headers=headers
                )
            except APIError as exc:
                if exc.err_code != MESSAGE_TOO_LARGE:
                    raise
                limit = min(limit, len(fitted.json)) // 2  # a smaller limit than it told us
                continue
            if ack.duplicate and await self._claim(js, ack.seq) != (
                notification.id,
                headers["Nats-Msg-Id"],
            ):
                raise NotHeld(notification.id)
            self.seq = ack.seq
            return
        # Not even the event's type, position and id fit: no server set up like this can
        # ever take it. Said once; the event stays in the event store.
        log.error(
            "event %s (%s) can never be published on %s: even without its fields it exceeds"
            " %d bytes; skipped",
            notification.id,
            document["type"],
            self.stream,
            limit,
        )

    async def publish_pending(self, js: Any, conn: psycopg.AsyncConnection[Any]) -> int:
        notifications = await anyio.to_thread.run_sync(
            lambda: self.app.recorder.select_notifications(
                start=self.position, limit=self.batch_size, inclusive_of_start=False
            )
        )
        for n in notifications:
            await self._publish(js, n)
            self.position = n.id
        caught_up = len(notifications) < self.batch_size
        if caught_up and self._not_held is not None:
            log.warning("stream %s holds every event again", self.stream)
            self._not_held = None
        if notifications or (caught_up and time.monotonic() - self._beat >= HEARTBEAT):
            await self._store_position(conn, caught_up)
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
                    self.position, self.seq = await self.resume_point(js, conn)
                    synced = True
                self._wake.clear()
                if await self.publish_pending(js, conn) == self.batch_size:
                    continue
            except NotHeld as exc:
                # Sent again from where it stopped (the position moved up to the event
                # before); said once until the stream takes events again.
                if self._not_held is None:
                    log.warning(
                        "stream %s: %s (purged?); sending events again until the stream"
                        " holds them (at most its duplicate_window)",
                        self.stream,
                        exc,
                    )
                self._not_held = exc.position
                await _sleep_or_stop(stop, 1.0)
                continue
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                # NATS is down or slow: check the resume point again once it is back.
                log.info("relay waiting for NATS: %r", exc)
                synced = False
                await _sleep_or_stop(stop, 0.5)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
