"""The login failures view: the recent failed sign-ins by username and client address, which
the brute-force throttle (`domain.throttle`) counts — in Postgres, so every replica sees the
same failures.

Built from the login and user events alone (their timestamps, never now()), so a replay
rebuilds it exactly:
- `login.failed` adds a row, unless the throttle itself refused the attempt (those are in the
  history, but do not extend the lock); rows older than `domain.throttle.MAX_WINDOW` before
  the event are pruned;
- `login.succeeded` forgets that user's failures from that address (not from others);
- `user.unlocked` forgets the user's failures, and those of its `address` if given.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.identity import Login, User
from domain.throttle import MAX_WINDOW, THROTTLED

name = "login_failures"
tables = ("login_failures",)
_RETENTION = timedelta(seconds=MAX_WINDOW)


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
    elif isinstance(event, User.Unlocked):
        cur.execute("DELETE FROM login_failures WHERE username = %s", (event.username,))
        if event.address:
            cur.execute("DELETE FROM login_failures WHERE client = %s", (event.address,))


async def recent(
    conn: Any, username: str, client: str, since: datetime, limit: int
) -> tuple[list[datetime], list[datetime]]:
    """The times of the (at most `limit`) latest failures after `since` of `username` and
    of `client`: all the throttle needs to decide."""
    found: list[list[datetime]] = []
    for column, value in (("username", username), ("client", client)):
        cur = await conn.execute(
            f"SELECT occurred_at FROM login_failures WHERE {column} = %s AND occurred_at > %s"
            " ORDER BY occurred_at DESC LIMIT %s",
            (value, since, limit),
        )
        found.append([row[0] for row in await cur.fetchall()])
    return found[0], found[1]
