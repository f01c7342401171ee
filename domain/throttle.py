"""The brute-force rule for sign-ins, without I/O: given when the recent failures for one key
(a username, a client address) happened, may another attempt go ahead, and if not, how long
until the window frees up.

After `limit` failures within `window` seconds further attempts are refused until the
`limit`-th most recent failure is older than the window. Attempts refused by the throttle are
not failures of their own (they are recorded, but do not extend the lock).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# The reason a login.failed event gives for an attempt the throttle refused.
THROTTLED = "throttled"
# The longest window the failures view keeps failures for (older ones are pruned).
MAX_WINDOW = 24 * 3600


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
