"""The registry's signing keys.

Signing keys live under `<data_dir>/keys/` as PKCS#8 PEM files (mode 0600), one per key,
named `<created>-<kid>.pem`; the `kid` is the key's RFC 7638 JWK thumbprint. The newest key
signs; every key present verifies, so `cyp-registry keys rotate` (a new current key) keeps
tokens signed with older keys valid until those keys are removed. Replicas sharing the
directory pick up keys another process added when they meet an unknown `kid`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def int_bytes(value: int) -> bytes:
    return value.to_bytes(32, "big")


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    numbers = public.public_numbers()
    jwk = (
        f'{{"crv":"P-256","kty":"EC","x":"{b64url(int_bytes(numbers.x))}",'
        f'"y":"{b64url(int_bytes(numbers.y))}"}}'
    )
    return b64url(hashlib.sha256(jwk.encode()).digest())


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey
    path: Path

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()


class KeyRing:
    """The signing keys in one directory: the newest signs, all verify."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._keys: dict[str, SigningKey] = {}
        self._current: SigningKey | None = None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._seen = -1

    # -- files -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _file_lock(self):
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _write_new(self) -> SigningKey:
        private = ec.generate_private_key(ec.SECP256R1())
        kid = key_id(private.public_key())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.directory / f"{time.time_ns():020d}-{kid}.pem"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return SigningKey(kid, private, path)

    def _read_all(self) -> list[SigningKey]:
        found = []
        for path in sorted(self.directory.glob("*.pem")):
            try:
                private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (OSError, ValueError, TypeError):
                continue
            if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
                private.curve, ec.SECP256R1
            ):
                continue
            found.append(SigningKey(key_id(private.public_key()), private, path))
        return found

    def _stamp(self) -> int:
        try:
            return self.directory.stat().st_mtime_ns
        except OSError:
            return -1

    def _install(self, keys: list[SigningKey], stamp: int | None = None) -> None:
        with self._lock:
            self._keys = {k.kid: k for k in keys}
            self._current = keys[-1] if keys else None
            self._checked = time.monotonic()
            self._seen = self._stamp() if stamp is None else stamp

    def load(self, create: bool = True) -> KeyRing:
        """Read the keys; with none (the first start) and `create`, make the first one."""
        with self._file_lock():
            stamp = self._stamp()  # before reading: a change after it is seen next time
            keys = self._read_all()
            if not keys and create:
                keys = [self._write_new()]
        self._install(keys, stamp)
        return self

    def rotate(self) -> SigningKey:
        """Add a new current key; older ones keep verifying until removed."""
        with self._file_lock():
            key = self._write_new()
            stamp = self._stamp()
            keys = self._read_all()
        self._install(keys, stamp)
        return key

    def remove(self, kid: str) -> bool:
        """Delete a key (tokens it signed stop verifying). The current key cannot be
        removed while it is the only one."""
        with self._file_lock():
            keys = self._read_all()
            doomed = [k for k in keys if k.kid == kid]
            if not doomed:
                return False
            if len(keys) == len(doomed):
                raise ValueError("cannot remove the only signing key; rotate first")
            for key in doomed:
                key.path.unlink()
            stamp = self._stamp()
            keys = self._read_all()
        self._install(keys, stamp)
        return True

    def refresh(self, min_interval: float = 1.0) -> None:
        """Re-read the directory if it changed (another process rotated or removed a key),
        looking at most once per interval."""
        if time.monotonic() - self._checked < min_interval:
            return
        self._checked = time.monotonic()
        stamp = self._stamp()
        if stamp == self._seen:
            return
        with contextlib.suppress(OSError):
            self._install(self._read_all() or list(self._keys.values()), stamp)

    # -- use ---------------------------------------------------------------------------------
    @property
    def current(self) -> SigningKey:
        self.refresh()
        if self._current is None:
            raise RuntimeError("no signing key")
        return self._current

    def find(self, kid: str) -> SigningKey | None:
        self.refresh()  # a removed key stops verifying within a second
        return self._keys.get(kid)

    def kids(self) -> list[str]:
        return list(self._keys)
