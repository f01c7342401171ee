"""Passwords this process verified lately, so a client that asks /token for a new scope on
every repository (docker does, per push and pull) costs one argon2id check per few minutes,
not one per request.

An entry is keyed by the user and their stored hash — a password change gives a new hash, so
the old entry is never found again — and holds an HMAC of the password under a key that
lives only in this process's memory: a dump of the cache reveals no password. Only successful
checks are cached; a wrong password always pays the full argon2id price.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from api.expiring import ExpiringMap


class VerifiedPasswords:
    def __init__(self, ttl: float = 300.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self._key = secrets.token_bytes(32)
        self._entries: ExpiringMap[tuple[str, str], bytes] = ExpiringMap(
            max_entries, time.monotonic
        )

    def _mac(self, password: str) -> bytes:
        return hmac.new(
            self._key, password.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).digest()

    def known(self, username: str, password_hash: str, password: str) -> bool:
        """This password was verified against this hash within the last `ttl` seconds."""
        mac = self._entries.get((username, password_hash))
        return mac is not None and hmac.compare_digest(mac, self._mac(password))

    def remember(self, username: str, password_hash: str, password: str) -> None:
        expires = time.monotonic() + self.ttl
        self._entries.put((username, password_hash), self._mac(password), expires)
