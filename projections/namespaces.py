"""The namespaces view: every namespace (public or not, personal or an organisation) and its
members with their role — what the policy needs to decide who may pull, push and delete.

A deleted namespace's name may be taken again: a new namespace, nothing of the old one. Its
row keeps the log position it was (re)created at (`created_position`), so the history and the
robots of a namespace are only those since (`projections.history`, `.access_tokens`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from domain.namespaces import Namespace
from domain.policy import NamespaceFacts

name = "namespaces"
tables = ("namespaces", "namespace_members")


class NamespaceRow(NamedTuple):
    name: str
    public: bool
    personal: bool
    created_at: datetime
    created_by: str
    updated_at: datetime


class MemberRow(NamedTuple):
    username: str
    role: str
    added_at: datetime
    added_by: str


def apply(cur: Any, event: Any, position: int) -> None:
    if isinstance(event, Namespace.Created | Namespace.Recreated):
        cur.execute(
            "INSERT INTO namespaces (name, public, personal, created_at, created_by, updated_at,"
            " created_position) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
            (
                event.name,
                event.public,
                event.personal,
                event.timestamp,
                event.actor,
                event.timestamp,
                position,
            ),
        )
        if event.owner:
            _member(cur, event, event.owner, "owner")
    elif isinstance(event, Namespace.VisibilityChanged):
        cur.execute(
            "UPDATE namespaces SET public = %s, updated_at = %s WHERE name = %s",
            (event.public, event.timestamp, event.name),
        )
    elif isinstance(event, Namespace.MemberAdded | Namespace.MemberChanged):
        _member(cur, event, event.username, event.role)
    elif isinstance(event, Namespace.Deleted):
        cur.execute("DELETE FROM namespace_members WHERE namespace = %s", (event.name,))
        cur.execute("DELETE FROM namespaces WHERE name = %s", (event.name,))
    elif isinstance(event, Namespace.MemberRemoved):
        cur.execute(
            "DELETE FROM namespace_members WHERE namespace = %s AND username = %s",
            (event.name, event.username),
        )


def _member(cur: Any, event: Any, username: str, role: str) -> None:
    cur.execute(
        "INSERT INTO namespace_members (namespace, username, role, added_at, added_by)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (namespace, username)"
        " DO UPDATE SET role = EXCLUDED.role",
        (event.name, username, role, event.timestamp, event.actor),
    )


async def facts(conn: Any, username: str, names: Iterable[str]) -> dict[str, NamespaceFacts]:
    """Of the existing namespaces among `names`: public or not, and `username`'s role."""
    cur = await conn.execute(
        "SELECT n.name, n.public, m.role FROM namespaces n LEFT JOIN namespace_members m"
        " ON m.namespace = n.name AND m.username = %s WHERE n.name = ANY(%s::text[])",
        (username, sorted(set(names))),
    )
    return {row[0]: NamespaceFacts(row[1], row[2]) for row in await cur.fetchall()}


async def readable(conn: Any, username: str) -> list[str]:
    """The namespaces whose repositories `username` may pull: the public ones and those
    where they are a member (any role)."""
    cur = await conn.execute(
        "SELECT name FROM namespaces WHERE public UNION"
        " SELECT namespace FROM namespace_members WHERE username = %s",
        (username,),
    )
    return sorted(row[0] for row in await cur.fetchall())


async def public_names(conn: Any) -> list[str]:
    cur = await conn.execute("SELECT name FROM namespaces WHERE public ORDER BY name")
    return [row[0] for row in await cur.fetchall()]


# a namespace with the role in it of the user given as the one parameter (NULL: none)
_WITH_ROLE = (
    f"SELECT {', '.join('n.' + c for c in NamespaceRow._fields)}, m.role FROM namespaces n"
    " LEFT JOIN namespace_members m ON m.namespace = n.name AND m.username = %s"
)


async def listing(
    conn: Any, username: str, everything: bool = False, after: str = "", limit: int | None = None
) -> list[tuple[NamespaceRow, str | None]]:
    """The namespaces `username` may see (public ones, theirs; `everything`: all of them, for
    a system admin), each with their role there, in name order after `after` (a page of
    `limit`; all without one)."""
    where = " WHERE n.name > %s" + ("" if everything else " AND (n.public OR m.role IS NOT NULL)")
    cur = await conn.execute(
        f"{_WITH_ROLE}{where} ORDER BY n.name LIMIT %s", (username, after, limit)
    )
    return [(NamespaceRow(*row[:-1]), row[-1]) for row in await cur.fetchall()]


async def owned(conn: Any, username: str, limit: int) -> list[str]:
    """The first `limit` namespaces `username` owns, by name (the members index)."""
    cur = await conn.execute(
        "SELECT namespace FROM namespace_members WHERE username = %s AND role = 'owner'"
        " ORDER BY namespace LIMIT %s",
        (username, limit),
    )
    return [row[0] for row in await cur.fetchall()]


async def get(
    conn: Any, namespace: str, username: str = ""
) -> tuple[NamespaceRow, str | None] | None:
    """A namespace and `username`'s role there; None if it does not exist."""
    cur = await conn.execute(f"{_WITH_ROLE} WHERE n.name = %s", (username, namespace))
    row = await cur.fetchone()
    return (NamespaceRow(*row[:-1]), row[-1]) if row else None


async def members(conn: Any, namespace: str) -> list[MemberRow]:
    cur = await conn.execute(
        "SELECT username, role, added_at, added_by FROM namespace_members"
        " WHERE namespace = %s ORDER BY username",
        (namespace,),
    )
    return [MemberRow(*row) for row in await cur.fetchall()]


async def has_repositories(conn: Any, namespace: str) -> bool:
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM repositories WHERE namespace = %s)", (namespace,)
    )
    return bool((await cur.fetchone())[0])
