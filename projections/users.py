"""The users view: one row per registered user (role, disabled, password hash).

Queries that list or show users never read the password hash; only `credentials` does,
for signing in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from domain.identity import User

name = "users"
tables = ("users",)


class UserRow(NamedTuple):
    name: str
    role: str
    disabled: bool
    created_at: datetime
    created_by: str
    updated_at: datetime


class Credentials(NamedTuple):
    name: str
    role: str
    disabled: bool
    password_hash: str


_COLUMNS = ", ".join(UserRow._fields)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, User.Registered):
        cur.execute(
            "INSERT INTO users (name, role, disabled, password_hash, created_at, created_by,"
            " updated_at, password_changed_at) VALUES (%s, %s, false, %s, %s, %s, %s, %s)"
            " ON CONFLICT (name) DO NOTHING",
            (
                event.username,
                event.role,
                event.password_hash,
                event.timestamp,
                event.actor,
                event.timestamp,
                event.timestamp,
            ),
        )
    elif isinstance(event, User.PasswordChanged):
        cur.execute(
            "UPDATE users SET password_hash = %s, password_changed_at = %s, updated_at = %s"
            " WHERE name = %s",
            (event.password_hash, event.timestamp, event.timestamp, event.username),
        )
    elif isinstance(event, User.RoleChanged):
        _update(cur, event, "role = %s", event.role)
    elif isinstance(event, User.Disabled):
        _update(cur, event, "disabled = %s", True)
    elif isinstance(event, User.Enabled):
        _update(cur, event, "disabled = %s", False)


def _update(cur: Any, event: Any, assignment: str, value: Any) -> None:
    cur.execute(
        f"UPDATE users SET {assignment}, updated_at = %s WHERE name = %s",
        (value, event.timestamp, event.username),
    )


async def get(conn: Any, username: str) -> UserRow | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = %s", (username,))
    row = await cur.fetchone()
    return UserRow(*row) if row else None


async def page(conn: Any, last: str = "", limit: int | None = None) -> list[UserRow]:
    """Users in name order after `last` (all of them without a limit)."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM users WHERE name > %s ORDER BY name LIMIT %s", (last, limit)
    )
    return [UserRow(*row) for row in await cur.fetchall()]


async def other_admins(conn: Any, username: str) -> int:
    """How many enabled system admins there are besides `username`."""
    cur = await conn.execute(
        "SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled AND name <> %s",
        (username,),
    )
    return (await cur.fetchone())[0]


async def count(conn: Any) -> int:
    cur = await conn.execute("SELECT count(*) FROM users")
    return (await cur.fetchone())[0]


async def credentials(conn: Any, username: str) -> Credentials | None:
    """What signing in checks: the hash, the role and whether the user is disabled."""
    cur = await conn.execute(
        "SELECT name, role, disabled, password_hash FROM users WHERE name = %s", (username,)
    )
    row = await cur.fetchone()
    return Credentials(*row) if row else None


async def changed_at(conn: Any, username: str) -> datetime | None:
    """When the user last changed (password, role, disabled): older refresh tokens die."""
    cur = await conn.execute("SELECT updated_at FROM users WHERE name = %s", (username,))
    row = await cur.fetchone()
    return row[0] if row else None
