"""The brute-force rule for sign-ins, without I/O: given when the recent failures for one key
(a username, a client address) happened, may another attempt go ahead, and if not, how long
until the window frees up.

After `limit` failures within `window` seconds further attempts are refused until the
`limit`-th most recent failure is older than the window. Attempts refused by the throttle are
not failures of their own (they are recorded, but do not extend the lock).

Two keys count (`decide`):
- the client address: `limit` (CYP_LOGIN_MAX_FAILURES) failures from it, for any usernames,
  hold it back — whoever guesses only locks themselves out (and whoever shares their address);
- the username, over all addresses: `USER_FACTOR` times as many, and only for addresses
  that did not sign in as that user within `KNOWN_CLIENT_FOR` — a flood of wrong passwords
  from elsewhere never locks a user out where they sign in, and one from many addresses is
  still slowed down for the rest.

Attempts still being checked count as failures until they are decided (`pending`): an
attempt that would reach a limit if they all failed waits for them (`Decision.busy`), so
of a burst of parallel wrong passwords at most the limit are ever checked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

# The reason a login.failed event gives for an attempt the throttle refused.
THROTTLED = "throttled"
# The longest window the failures view keeps failures for (older ones are pruned).
MAX_WINDOW = 24 * 3600
# A username's limit over all addresses, as a multiple of the per-address one.
USER_FACTOR = 10
# How long a successful sign-in from an address exempts it from its user's limit.
KNOWN_CLIENT_FOR = 30 * 24 * 3600


def retry_after(failures: Iterable[float], now: float, limit: int, window: float) -> float | None:
    """None if an attempt may go ahead; else the seconds until one may (> 0, <= window).

    `failures`: the times (seconds) of the key's failed attempts, in any order; those at or
    before `now - window` no longer count; later ones (a replica's clock ahead) do.
    `limit` < 1 turns the throttle off.
    """
    if limit < 1 or window <= 0:
        return None
    recent = sorted((t for t in failures if t > now - window), reverse=True)
    if len(recent) < limit:
        return None
    oldest_counted = recent[limit - 1]
    return min(max(oldest_counted + window - now, 0.0), float(window)) or None


def retry_after_header(seconds: float) -> str:
    """`Retry-After` wants whole seconds: never less than the wait, never 0."""
    return str(max(1, math.ceil(seconds)))


def _recent(failures: Iterable[float], now: float, window: float) -> int:
    return sum(1 for t in failures if t > now - window)


class Decision(NamedTuple):
    """What the throttle says about one more attempt."""

    wait: float | None = None  # refused (429): seconds until an attempt may go ahead
    busy: bool = False  # not yet: as many attempts are being checked as may still fail
    per_user: bool = True  # the username's limit applies (its address is not known)

    @property
    def go(self) -> bool:
        return self.wait is None and not self.busy


def decide(
    address_failures: Sequence[float],
    user_failures: Sequence[float],
    address_pending: int,
    user_pending: int,
    known: bool,
    now: float,
    limit: int,
    window: float,
) -> Decision:
    """Whether an attempt from an address as a username may be checked now.

    `*_failures`: the times of recent failures from the address and as the username;
    `*_pending`: the attempts being checked (reserved, not yet decided) from the address
    and, of those from addresses not known for the user, as the username; `known`: the
    address signed in as the username within `KNOWN_CLIENT_FOR`."""
    per_user = not known
    if limit < 1 or window <= 0:
        return Decision(per_user=per_user)
    keys = [(address_failures, address_pending, limit)]
    if per_user:
        keys.append((user_failures, user_pending, limit * USER_FACTOR))
    waits = [w for f, _, n in keys if (w := retry_after(f, now, n, window)) is not None]
    if waits:
        return Decision(wait=max(waits), per_user=per_user)
    busy = any(_recent(f, now, window) + pending >= n for f, pending, n in keys)
    return Decision(busy=busy, per_user=per_user)
