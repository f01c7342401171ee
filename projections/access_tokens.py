"""The access_tokens view: personal access tokens and robots, with the hash of their secret
(for signing in) — listings never read the hash.

A robot belongs to one incarnation of its namespace: those issued before the namespace was
(re)created (`issued_position` below its `created_position`) were the deleted namespace's —
not listed, not found by name, never signing in again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from psycopg.types.json import Jsonb

from domain.access_tokens import AccessToken

name = "access_tokens"
tables = ("access_tokens",)


class TokenRow(NamedTuple):
    token_id: str
    token_type: str
    principal: str
    namespace: str
    name: str
    description: str
    scopes: dict[str, list[str]]
    expires_at: datetime
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None


class Secret(NamedTuple):
    """What signing in with a token needs."""

    token_type: str
    principal: str
    namespace: str
    scopes: dict[str, list[str]]
    expires_at: datetime
    revoked: bool
    secret_hash: str
    # The user the token answers to, as they are now: a personal token's owner, a robot's
    # personal namespace's user (None: a robot of an organisation, or no such user).
    user_role: str | None
    user_disabled: bool | None
    # a personal token, or a robot of its namespace as it exists now
    current: bool


_COLUMNS = ", ".join(TokenRow._fields)
# Whether the robot `a` belongs to the current incarnation of namespace `n` (positions
# unknown — rows from before they were kept — count as current).
_CURRENT = "coalesce(a.issued_position >= n.created_position, true)"


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, AccessToken.Issued | AccessToken.Reissued):
        # (a revoked robot's name taken again replaces the old robot's row)
        cur.execute(
            "INSERT INTO access_tokens AS a (token_id, token_type, principal, namespace, name,"
            " description, scopes, expires_at, secret_hash, created_at, created_by,"
            " issued_position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (token_id) DO UPDATE SET principal = EXCLUDED.principal,"
            " namespace = EXCLUDED.namespace, name = EXCLUDED.name,"
            " description = EXCLUDED.description, scopes = EXCLUDED.scopes,"
            " expires_at = EXCLUDED.expires_at, secret_hash = EXCLUDED.secret_hash,"
            " created_at = EXCLUDED.created_at, created_by = EXCLUDED.created_by,"
            " issued_position = EXCLUDED.issued_position, revoked_at = NULL, revoked_by = NULL"
            " WHERE coalesce(a.issued_position < EXCLUDED.issued_position, true)",
            (
                event.token_id,
                event.token_type,
                event.principal,
                event.namespace,
                event.name,
                event.description,
                Jsonb(event.scopes),
                datetime.fromtimestamp(event.expires_at, UTC),
                event.secret_hash,
                event.timestamp,
                event.actor,
                position,
            ),
        )
    elif isinstance(event, AccessToken.Revoked):
        cur.execute(
            "UPDATE access_tokens SET revoked_at = %s, revoked_by = %s WHERE token_id = %s",
            (event.timestamp, event.actor, event.token_id),
        )


async def secret(conn: Any, token_id: str) -> Secret | None:
    """The token and, in the same round trip, the user it answers to (a user's name is
    their personal namespace's: no organisation namespace can have it)."""
    cur = await conn.execute(
        "SELECT a.token_type, a.principal, a.namespace, a.scopes, a.expires_at,"
        " a.revoked_at IS NOT NULL, a.secret_hash, u.role, u.disabled,"
        f" a.token_type = 'personal' OR (n.name IS NOT NULL AND {_CURRENT})"
        " FROM access_tokens a"
        " LEFT JOIN users u ON u.name = CASE WHEN a.token_type = 'personal' THEN a.principal"
        " ELSE a.namespace END"
        " LEFT JOIN namespaces n ON n.name = a.namespace WHERE a.token_id = %s",
        (token_id,),
    )
    row = await cur.fetchone()
    return Secret(*row) if row else None


async def get(conn: Any, token_id: str) -> TokenRow | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM access_tokens WHERE token_id = %s", (token_id,)
    )
    row = await cur.fetchone()
    return TokenRow(*row) if row else None


async def of_user(conn: Any, username: str) -> list[TokenRow]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM access_tokens WHERE principal = %s AND token_type = 'personal'"
        " ORDER BY created_at, token_id",
        (username,),
    )
    return [TokenRow(*row) for row in await cur.fetchall()]


_ROBOTS = (
    f"SELECT {', '.join('a.' + c for c in TokenRow._fields)} FROM access_tokens a"
    f" JOIN namespaces n ON n.name = a.namespace AND {_CURRENT}"
    " WHERE a.namespace = %s AND a.token_type = 'robot'"
)


async def robots(conn: Any, namespace: str) -> list[TokenRow]:
    """The robots of the namespace as it exists now (none of a deleted one of its name)."""
    cur = await conn.execute(f"{_ROBOTS} ORDER BY a.token_id", (namespace,))
    return [TokenRow(*row) for row in await cur.fetchall()]


async def robot(conn: Any, namespace: str, username: str) -> TokenRow | None:
    """One robot of the namespace as it exists now, by its `robot$…` name."""
    cur = await conn.execute(f"{_ROBOTS} AND a.token_id = %s", (namespace, username))
    row = await cur.fetchone()
    return TokenRow(*row) if row else None
