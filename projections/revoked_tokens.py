"""The revoked_tokens view: one row per signed-out /api token (by its `jti`).

`session` answers, in one round trip, what the /api guard needs to know of a token's
subject on every request: whether the token was revoked, and the user's current role and
whether they are disabled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from domain.identity import RevokedToken

name = "revoked_tokens"
tables = ("revoked_tokens",)


class Session(NamedTuple):
    revoked: bool
    role: str | None  # None: no such user
    disabled: bool
    password_changed_at: datetime | None


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, RevokedToken.Revoked):
        cur.execute(
            "INSERT INTO revoked_tokens (jti, subject, expires_at, revoked_at, revoked_by)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (jti) DO NOTHING",
            (
                event.jti,
                event.subject,
                datetime.fromtimestamp(event.expires, UTC),
                event.timestamp,
                event.actor,
            ),
        )


async def is_revoked(conn: Any, jti: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = %s", (jti,))
    return await cur.fetchone() is not None


async def session(conn: Any, jti: str, username: str) -> Session:
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = %s),"
        " (SELECT role FROM users WHERE name = %s),"
        " coalesce((SELECT disabled FROM users WHERE name = %s), true),"
        " (SELECT password_changed_at FROM users WHERE name = %s)",
        (jti, username, username, username),
    )
    row = await cur.fetchone()
    return Session(bool(row[0]), row[1], bool(row[2]), row[3])
