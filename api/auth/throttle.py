"""The brute-force throttle around every sign-in (/token, /api/auth/login), and the record of
each attempt.

`attempt` is entered before any credential is checked: it asks the throttle
(`domain.throttle.decide`, on the failures every replica sees) and reserves the attempt in
the same transaction (`projections.login_attempts`), so parallel attempts are counted
before their passwords are checked, not after. An attempt that would reach a limit if
those being checked all failed waits for them (woken by their release in this process,
or every `_POLL` seconds for other processes); one the throttle refuses is recorded as a
login.failed with reason "throttled" and raises `Throttled`. The reservation is released
when the block ends, after a failure was recorded and reached the views (`record_attempt`
waits for that), so the count never drops in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from litestar import Request

from api.auth.guards import client_address, user_agent
from api.services import Services
from domain.identity import login_username
from domain.throttle import THROTTLED
from projections import login_attempts

_POLL = 0.25  # seconds between looks while attempts elsewhere are being checked


class Throttled(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"throttled for {wait:.0f}s")
        self.wait = wait


class _Releases:
    """Wakes the attempts of this process that wait for others to be decided."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


_releases = _Releases()  # one per process (one event loop)


async def record_attempt(
    request: Request[Any, Any, Any],
    username: str,
    failure: str | None,
    method: str,
    credential: str = "",
) -> None:
    """Record a sign-in attempt; a real failure reaches the views before this returns (the
    next attempt, on any replica, counts it)."""
    services: Services = request.app.state.services
    position = await anyio.to_thread.run_sync(
        services.registry.record_login,
        username,
        method,
        client_address(request),
        user_agent(request),
        failure,
        credential,
    )
    if failure is not None and failure != THROTTLED:
        await services.waiter.wait(position, services.write_wait)


@contextlib.asynccontextmanager
async def attempt(
    request: Request[Any, Any, Any], username: str, method: str, checked: bool = True
) -> AsyncIterator[None]:
    """Around checking one attempt's credentials: Throttled (recorded) if it may not be
    checked. `checked=False`: credentials known good without a check (a password verified
    a moment ago) are only held back by the failures, not by attempts in flight."""
    services: Services = request.app.state.services
    limit, window = services.login_max_failures, services.login_window
    if limit < 1:
        yield
        return
    key, client = login_username(username), client_address(request)
    deadline = time.monotonic() + services.write_wait
    while True:
        decision, reservation = await services.query(
            login_attempts.reserve, key, client, time.time(), limit, window, checked
        )
        if not decision.busy:
            break
        if time.monotonic() >= deadline:  # those being checked take too long: later
            decision = decision._replace(wait=1.0)
            break
        await _releases.wait(_POLL)
    if decision.wait is not None:
        await record_attempt(request, username, THROTTLED, method)
        raise Throttled(decision.wait)
    try:
        yield
    finally:
        if reservation is not None:
            await services.query(login_attempts.release, reservation)
            _releases.notify()
