"""Sign-in attempts being checked right now: the brute-force throttle's reservations.

Not a view (no events, not replayed): a rate limit, not history. The failures themselves
stay `login.failed` events counted by the login failures view; this table only holds the
attempts between "may it be checked?" and "its outcome counts there". `reserve` decides and
reserves in one transaction under an advisory lock per client address and per username, so
replicas and API processes deciding at the same moment see each other's reservations: of a
burst of parallel attempts, no more are checked than may still fail before a limit is
reached (`domain.throttle.decide`). A reservation that was never released (its process
died) stops counting at `expires_at` (Postgres' clock: one clock for every replica).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.throttle import KNOWN_CLIENT_FOR, USER_FACTOR, Decision, decide
from projections import login_failures

# Any constant shared by every process (the two-key form: apart from the one-key locks).
_LOCK_CLASS = 0x637970
# Longer than any check takes (argon2id queued behind a burst), short enough that a dead
# process's reservations soon stop counting.
RESERVATION_TTL = 60


async def reserve(
    conn: Any,
    username: str,
    client: str,
    now: float,
    limit: int,
    window: float,
    hold: bool = True,
) -> tuple[Decision, int | None]:
    """The throttle's decision on one more attempt, and the id of the reservation taken if
    it may go ahead (`hold`: take one; without, only decide, ignoring attempts in flight —
    for credentials that need no check, such as a password verified a moment ago)."""
    since = datetime.fromtimestamp(now - window, UTC)
    known_since = datetime.fromtimestamp(now - KNOWN_CLIENT_FOR, UTC)

    async def decided(pending: tuple[int, int]) -> Decision:
        found = await login_failures.facts(
            conn, username, client, since, known_since, limit, limit * USER_FACTOR
        )
        return decide(
            [t.timestamp() for t in found.address_failures],
            [t.timestamp() for t in found.user_failures],
            *pending,
            found.known,
            now,
            limit,
            window,
        )

    if not hold:  # one statement, no lock
        return await decided((0, 0)), None
    async with conn.transaction():
        # in one order everywhere (by key), so two attempts never wait for each other
        await conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(k)) FROM"
            " (SELECT k FROM unnest(%s::text[]) AS k ORDER BY hashtext(k)) AS keys",
            (_LOCK_CLASS, [f"client:{client}", f"user:{username}"]),
        )
        # Attempts in flight first, then the failures (each statement sees what committed
        # before it): a reservation gone from the first was released after its failure
        # reached the view, so the second sees that failure — nothing is missed.
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE client = %(client)s),"
            " count(*) FILTER (WHERE username = %(user)s AND per_user)"
            " FROM login_attempts WHERE (client = %(client)s OR username = %(user)s)"
            " AND expires_at > now()",
            {"client": client, "user": username},
        )
        decision = await decided(await cur.fetchone())
        if not decision.go:
            return decision, None
        cur = await conn.execute(
            "INSERT INTO login_attempts (username, client, per_user, expires_at)"
            " VALUES (%s, %s, %s, now() + %s) RETURNING id",
            (username, client, decision.per_user, timedelta(seconds=RESERVATION_TTL)),
        )
        return decision, (await cur.fetchone())[0]


async def release(conn: Any, reservation: int) -> None:
    """Drop a reservation (its outcome counts in the view now), and any that expired."""
    await conn.execute(
        "DELETE FROM login_attempts WHERE id = %s OR expires_at < now()", (reservation,)
    )
