"""The access_tokens view: personal access tokens and robots, with the hash of their secret
(for signing in) — listings never read the hash."""

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


_COLUMNS = ", ".join(TokenRow._fields)


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, AccessToken.Issued):
        cur.execute(
            "INSERT INTO access_tokens (token_id, token_type, principal, namespace, name,"
            " description, scopes, expires_at, secret_hash, created_at, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (token_id) DO NOTHING",
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
            ),
        )
    elif isinstance(event, AccessToken.Revoked):
        cur.execute(
            "UPDATE access_tokens SET revoked_at = %s, revoked_by = %s WHERE token_id = %s",
            (event.timestamp, event.actor, event.token_id),
        )


async def secret(conn: Any, token_id: str) -> Secret | None:
    cur = await conn.execute(
        "SELECT token_type, principal, namespace, scopes, expires_at, revoked_at IS NOT NULL,"
        " secret_hash FROM access_tokens WHERE token_id = %s",
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


async def robots(conn: Any, namespace: str) -> list[TokenRow]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM access_tokens WHERE namespace = %s AND token_type = 'robot'"
        " ORDER BY token_id",
        (namespace,),
    )
    return [TokenRow(*row) for row in await cur.fetchall()]
