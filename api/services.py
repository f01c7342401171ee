"""What the handlers need, built once by the composition root."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import psycopg
from psycopg_pool import AsyncConnectionPool

from api.auth.jwts import ApiTokens, TokenCache, Tokens
from api.auth.verified_passwords import VerifiedPasswords
from api.availability import DatabaseGate
from api.proxies import TrustedProxies
from domain.pulls import PullTally
from domain.registry import Registry
from projections.waiter import PositionWaiter
from storage.filesystem import FilesystemStore


class ManifestCache:
    """Manifest bytes by digest (content-addressed, hence never stale), bounded in bytes."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, digest: str) -> bytes | None:
        data = self._items.get(digest)
        if data is not None:
            self._items.move_to_end(digest)
        return data

    def put(self, digest: str, data: bytes) -> None:
        if digest in self._items or len(data) > self.max_bytes:
            return
        self._items[digest] = data
        self.size += len(data)
        while self.size > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.size -= len(old)


@dataclass
class Services:
    registry: Registry
    store: FilesystemStore
    pool: AsyncConnectionPool
    waiter: PositionWaiter
    version: str
    nats_ok: Callable[[], Awaitable[bool]]
    write_wait: float = 10.0
    # Closed while Postgres is out of reach: database calls then answer 503 at once.
    database: DatabaseGate = field(default_factory=DatabaseGate)
    # /health says `degraded` when the relay of this stream is more than this many seconds
    # behind the event log (0: never).
    relay_stream: str = "CYP_EVENTS"
    relay_max_lag: float = 30.0
    manifests: ManifestCache = field(default_factory=ManifestCache)
    # Manifest GETs answered 200, counted until workers.pulls records them (domain.pulls).
    pulls: PullTally = field(default_factory=PullTally)
    lifespan: Sequence[Any] = ()
    # Token authentication: the signer/verifier, its cache of verified tokens, where clients
    # reach the registry (empty: from each request) and how long refresh tokens live.
    tokens: Tokens | None = None
    token_cache: TokenCache | None = None
    public_url: str = ""
    anonymous_pull: bool = False  # anonymous callers may pull from public namespaces
    refresh_ttl: int = 30 * 24 * 3600
    # Whose X-Forwarded-For names the client (CYP_TRUSTED_PROXIES; none by default).
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # Brute-force throttle of sign-ins (domain.throttle): failures per user / address.
    login_max_failures: int = 5
    login_window: int = 300
    # /api session tokens (POST /api/auth/login): same keys, their own audience and lifetime.
    api_token_ttl: int = 12 * 3600
    api_tokens: ApiTokens | None = None
    # Passwords verified lately (argon2id once per few minutes per user, not per /token).
    verified: VerifiedPasswords = field(default_factory=VerifiedPasswords)
    # argon2id takes 64 MiB and a core per check: at most two at once, so a burst of sign-ins
    # (or of wrong passwords) queues instead of taking the memory of dozens.
    hashing: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(2))

    def __post_init__(self) -> None:
        if self.tokens is not None and self.token_cache is None:
            self.token_cache = TokenCache(self.tokens)
        if self.tokens is not None and self.api_tokens is None:
            self.api_tokens = ApiTokens(self.tokens.keys, self.tokens.issuer, self.api_token_ttl)

    async def command(self, fn: Callable[..., int | None], *args: Any) -> int | None:
        """Run a (synchronous) domain command, then wait until the views have its events."""
        return await self.settled(await anyio.to_thread.run_sync(fn, *args))

    async def settled(self, position: int | None) -> int | None:
        """Wait until the views have the events of a command that ran (up to `position`)."""
        await self.waiter.wait(position, self.write_wait)
        return position

    async def query(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.database.check()
        try:
            async with self.pool.connection() as conn:
                return await fn(conn, *args)
        except psycopg.Error as exc:
            self.database.failed(exc)
            raise
