"""The login failures view: the recent failed sign-ins by username and client address, which
the brute-force throttle (`domain.throttle`) counts — in Postgres, so every replica sees the
same failures — and where each user signed in lately (`login_known_clients`: such an address
is not held back by the user's failures from elsewhere).

Built from the login and user events alone (their timestamps, never now()), so a replay
rebuilds it exactly:
- `login.failed` adds a row, unless the throttle itself refused the attempt (those are in the
  history, but do not extend the lock); rows older than `domain.throttle.MAX_WINDOW` before
  the event are pruned;
- `login.succeeded` forgets that user's failures from that address (not from others) and
  marks the address known for the user (those older than `KNOWN_CLIENT_FOR` are pruned);
- `user.unlocked` forgets the user's failures, and those of its `address` if given.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from domain.identity import Login, User
from domain.throttle import KNOWN_CLIENT_FOR, MAX_WINDOW, THROTTLED

name = "login_failures"
tables = ("login_failures", "login_known_clients")
_RETENTION = timedelta(seconds=MAX_WINDOW)
_KNOWN = timedelta(seconds=KNOWN_CLIENT_FOR)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, Login.Failed):
        if event.reason == THROTTLED:
            return
        cur.execute(
            "INSERT INTO login_failures (position, occurred_at, username, client)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (position) DO NOTHING",
            (position, event.timestamp, event.username, event.client),
        )
        cur.execute(
            "DELETE FROM login_failures WHERE occurred_at < %s",
            (event.timestamp - _RETENTION,),
        )
    elif isinstance(event, Login.Succeeded):
        cur.execute(
            "DELETE FROM login_failures WHERE username = %s AND client = %s",
            (event.username, event.client),
        )
        cur.execute(
            "INSERT INTO login_known_clients (username, client, succeeded_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (username, client) DO UPDATE"
            " SET succeeded_at = greatest(login_known_clients.succeeded_at, EXCLUDED.succeeded_at)",
            (event.username, event.client, event.timestamp),
        )
        cur.execute(
            "DELETE FROM login_known_clients WHERE succeeded_at < %s",
            (event.timestamp - _KNOWN,),
        )
    elif isinstance(event, User.Unlocked):
        cur.execute("DELETE FROM login_failures WHERE username = %s", (event.username,))
        if event.address:
            cur.execute("DELETE FROM login_failures WHERE client = %s", (event.address,))


class Facts(NamedTuple):
    """What the throttle counts for one attempt (`domain.throttle.decide`)."""

    known: bool  # the address signed in as the username lately
    address_failures: list[datetime]
    user_failures: list[datetime]


async def facts(
    conn: Any,
    username: str,
    client: str,
    since: datetime,
    known_since: datetime,
    limit: int,
    user_limit: int,
) -> Facts:
    """In one statement: whether `client` is known for `username` since `known_since`, and
    the times of the latest failures after `since` from `client` (at most `limit`) and as
    `username` (at most `user_limit`)."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM login_known_clients WHERE username = %(user)s"
        "  AND client = %(client)s AND succeeded_at > %(known_since)s),"
        " ARRAY(SELECT occurred_at FROM login_failures WHERE client = %(client)s"
        "  AND occurred_at > %(since)s ORDER BY occurred_at DESC LIMIT %(limit)s),"
        " ARRAY(SELECT occurred_at FROM login_failures WHERE username = %(user)s"
        "  AND occurred_at > %(since)s ORDER BY occurred_at DESC LIMIT %(user_limit)s)",
        {
            "user": username,
            "client": client,
            "since": since,
            "known_since": known_since,
            "limit": limit,
            "user_limit": user_limit,
        },
    )
    row = await cur.fetchone()
    return Facts(bool(row[0]), list(row[1]), list(row[2]))
