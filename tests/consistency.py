"""Checks that the derived state agrees with the event log: views vs a replay of the log,
and the JetStream stream vs the event store (every event once, in log order)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import psycopg

from projections.catalog import VIEWS
from tests.support import ROOT, as_url

EVENTS_TABLE = "registry_events"


def view_tables() -> list[str]:
    return [table for view in VIEWS.values() for table in view.tables]


def view_rows(database_url: str) -> dict[str, list[str]]:
    """Every row of every view table, as sorted JSON text (comparable row for row)."""
    with psycopg.connect(database_url) as conn:
        return {
            table: sorted(
                row[0] for row in conn.execute(f'SELECT to_jsonb(t)::text FROM "{table}" t')
            )
            for table in view_tables()
        }


def head_position(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}"
        ).fetchone()[0]


def wait_views_current(database_url: str, timeout: float = 30) -> int:
    """Wait until every view has reached the head of the event log; returns that position."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(database_url) as conn:
            head = conn.execute(
                f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}"
            ).fetchone()[0]
            rows = conn.execute("SELECT view, position FROM view_positions").fetchall()
        positions = dict(rows)
        if set(positions) >= set(VIEWS) and min(positions.values()) >= head:
            return head
        if time.monotonic() > deadline:
            raise AssertionError(f"views stuck at {positions}, log head {head}")
        time.sleep(0.1)


def replay(database_url: str, data_dir: Path) -> str:
    """Run `cyp-registry replay` (no registry may be running on this database)."""
    env = {**os.environ, "CYP_DATABASE_URL": as_url(database_url), "CYP_LOG_LEVEL": "warning"}
    done = subprocess.run(
        [sys.executable, "-m", "cyp_registry.cli", "replay", "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"replay failed: {done.stdout}\n{done.stderr}"
    return done.stdout


def assert_views_equal_replay(database_url: str, data_dir: Path) -> None:
    """The live views equal, row for row, what a replay of the whole log builds."""
    wait_views_current(database_url)
    live = view_rows(database_url)
    replay(database_url, data_dir)
    rebuilt = view_rows(database_url)
    for table in view_tables():
        missing = sorted(set(rebuilt[table]) - set(live[table]))[:5]
        extra = sorted(set(live[table]) - set(rebuilt[table]))[:5]
        assert live[table] == rebuilt[table], (
            f"view {table} differs from a replay: live lacks {missing}, live has extra {extra}"
        )


# -- the event store and the stream ---------------------------------------------------------------
@dataclass(frozen=True)
class Stored:
    position: int
    msg_id: str


def event_log(database_url: str) -> list[Stored]:
    """Every stored event in log order, with the Nats-Msg-Id the relay must give it."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT notification_id, originator_id, originator_version FROM {EVENTS_TABLE}"
            " ORDER BY notification_id"
        ).fetchall()
    return [Stored(n, f"{oid}:{version}") for n, oid, version in rows]


@dataclass(frozen=True)
class Published:
    seq: int
    position: int  # its Cyp-Position (-1: none, or not a number: a foreign message)
    msg_id: str
    subject: str
    data: bytes


def _position(header: str | None) -> int:
    return int(header) if header and header.isascii() and header.isdigit() else -1


async def _stream_messages(nats_url: str, stream: str) -> list[Published]:
    nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
    try:
        js = nc.jetstream()
        state = (await js.stream_info(stream)).state
        found = []
        if state.messages:
            for seq in range(state.first_seq, state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                headers: dict[str, Any] = msg.headers or {}
                found.append(
                    Published(
                        seq,
                        _position(headers.get("Cyp-Position")),
                        headers.get("Nats-Msg-Id", ""),
                        msg.subject,
                        msg.data or b"",
                    )
                )
        return found
    finally:
        await nc.close()


def stream_messages(nats_url: str, stream: str, foreign: Collection[int] = ()) -> list[Published]:
    """Every message of a stream, in stream order (by sequence number), but those whose
    sequence numbers are in `foreign` (published by a test, not by the relay)."""
    messages = asyncio.run(_stream_messages(nats_url, stream))
    return [m for m in messages if m.seq not in foreign]


def wait_relayed(
    nats_url: str,
    stream: str,
    database_url: str,
    timeout: float = 30,
    foreign: Collection[int] = (),
) -> int:
    """Wait until the stream's last message is the log's last event; returns that position."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        head = head_position(database_url)
        try:
            messages = stream_messages(nats_url, stream, foreign)
        except Exception as exc:  # the stream does not exist yet, NATS restarting
            last_error = exc
        else:
            if messages and messages[-1].position >= head:
                return head
            last_error = None
        time.sleep(0.2)
    raise AssertionError(f"relay did not reach the log head in {timeout}s ({last_error!r})")


def assert_stream_matches_log(
    nats_url: str, stream: str, database_url: str, foreign: Collection[int] = ()
) -> list[Published]:
    """Each stored event is in the stream exactly once, in log order, nothing else is (but
    the messages numbered in `foreign`)."""
    log = event_log(database_url)
    messages = stream_messages(nats_url, stream, foreign)
    positions = [m.position for m in messages]
    duplicates = sorted({p for p in positions if positions.count(p) > 1})
    assert not duplicates, f"published more than once: positions {duplicates[:10]}"
    assert positions == sorted(positions), "stream is not in log order"
    stored = [e.position for e in log]
    missing = sorted(set(stored) - set(positions))
    extra = sorted(set(positions) - set(stored))
    assert not missing, f"never published: positions {missing[:10]} of {len(stored)}"
    assert not extra, f"published but not stored: positions {extra[:10]}"
    assert [(m.position, m.msg_id) for m in messages] == [(e.position, e.msg_id) for e in log]
    return messages
