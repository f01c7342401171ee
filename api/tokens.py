"""Signed bearer tokens: ES256 JWTs as the distribution token specification describes.

Signing keys live under `<data_dir>/keys/` as PKCS#8 PEM files (mode 0600), one per key,
named `<created>-<kid>.pem`; the `kid` is the key's RFC 7638 JWK thumbprint. The newest key
signs; every key present verifies, so `cyp-registry keys rotate` (a new current key) keeps
tokens signed with older keys valid until those keys are removed. Replicas sharing the
directory pick up keys another process added when they meet an unknown `kid`.

Only ES256 is accepted: `alg: none`, HS256 (with the public key as the secret) or anything
else is refused before a signature is looked at.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

ALGORITHM = "ES256"
MAX_TOKEN_LENGTH = 16 * 1024
NBF_LEEWAY = 5  # seconds of clock difference between replicas tolerated for nbf/iat
_REFRESH_USE = "refresh"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(32, "big")


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    numbers = public.public_numbers()
    jwk = (
        f'{{"crv":"P-256","kty":"EC","x":"{b64url(_int_bytes(numbers.x))}",'
        f'"y":"{b64url(_int_bytes(numbers.y))}"}}'
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


def _json(part: str) -> Any:
    return json.loads(unb64url(part))


class Tokens:
    """Issues and verifies the registry's JWTs."""

    def __init__(self, keys: KeyRing, issuer: str, service: str, ttl: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.service = service
        self.ttl = ttl

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keys.current
        header = {"typ": "JWT", "alg": ALGORITHM, "kid": key.kid}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = key.private.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + b64url(_int_bytes(r) + _int_bytes(s))

    def _claims(self, subject: str, now: float, ttl: int) -> dict[str, Any]:
        issued = int(now)
        return {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": issued + ttl,
            "nbf": issued,
            "iat": issued,
            "jti": secrets.token_urlsafe(16),
        }

    def issue(
        self,
        subject: str,
        access: list[dict[str, Any]],
        now: float | None = None,
        credential: str = "",
    ) -> tuple[str, dict[str, Any]]:
        """An access token; `credential` names the access token or robot it was issued for
        (the catalog applies its limits), "" for a password sign-in."""
        claims = self._claims(subject, time.time() if now is None else now, self.ttl)
        claims["access"] = access
        if credential:
            claims["cred"] = credential
        return self.sign(claims), claims

    def issue_refresh(
        self, subject: str, ttl: int, now: float | None = None, credential: str = ""
    ) -> str:
        now = time.time() if now is None else now
        claims = self._claims(subject, now, ttl)
        claims["token_use"] = _REFRESH_USE
        claims["auth_time"] = now  # precise: refresh tokens older than a change of the user die
        if credential:  # refreshing must not turn a limited token into the user's full rights
            claims["cred"] = credential
        return self.sign(claims)

    def verify(self, token: str, now: float | None = None) -> dict[str, Any] | None:
        """The claims of a valid access token; None for anything else (never raises)."""
        claims = self._verified(token, now)
        if claims is None or "token_use" in claims:
            return None
        return claims

    def verify_refresh(self, token: str, now: float | None = None) -> dict[str, Any] | None:
        claims = self._verified(token, now)
        if claims is None or claims.get("token_use") != _REFRESH_USE:
            return None
        return claims

    def _verified(self, token: Any, now: float | None) -> dict[str, Any] | None:
        try:
            return self._check(token, time.time() if now is None else now)
        except Exception:  # malformed input of any kind: not a valid token
            return None

    def _check(self, token: str, now: float) -> dict[str, Any] | None:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return None
        parts = token.split(".")
        if len(parts) != 3:
            return None
        header = _json(parts[0])
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
            return None
        kid = header.get("kid")
        if not isinstance(kid, str):
            return None
        key = self.keys.find(kid)
        if key is None:
            return None
        signature = unb64url(parts[2])
        if len(signature) != 64:
            return None
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            key.public.verify(
                der, f"{parts[0]}.{parts[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return None
        claims = _json(parts[1])
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return None
        audience = claims.get("aud")
        if not (
            audience == self.service or (isinstance(audience, list) and self.service in audience)
        ):
            return None
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not _number(exp) or now >= exp:
            return None
        if nbf is not None and (not _number(nbf) or nbf > now + NBF_LEEWAY):
            return None
        if not isinstance(claims.get("sub", ""), str):
            return None
        return claims


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Grant:
    """A verified access token, as the hot path needs it."""

    subject: str
    expires: float
    actions: frozenset[tuple[str, str, str]]  # (type, name, action)
    credential: str = ""  # the access token or robot it was issued for ("": a password)

    def allows(self, kind: str, name: str, actions: tuple[str, ...]) -> bool:
        return all(
            (kind, name, action) in self.actions or (kind, name, "*") in self.actions
            for action in actions
        )


def grant_of(claims: dict[str, Any]) -> Grant:
    actions: set[tuple[str, str, str]] = set()
    access = claims.get("access")
    for entry in access if isinstance(access, list) else []:
        if not isinstance(entry, dict):
            continue
        kind, name, acts = entry.get("type"), entry.get("name"), entry.get("actions")
        if isinstance(kind, str) and isinstance(name, str) and isinstance(acts, list):
            actions.update((kind, name, a) for a in acts if isinstance(a, str))
    credential = claims.get("cred")
    return Grant(
        str(claims.get("sub") or ""),
        float(claims["exp"]),
        frozenset(actions),
        credential if isinstance(credential, str) else "",
    )


class TokenCache:
    """Verified tokens by their string, until they expire: a manifest GET costs a dict
    lookup, not a signature check."""

    def __init__(self, tokens: Tokens, max_entries: int = 10_000) -> None:
        self.tokens = tokens
        self.max_entries = max_entries
        self._grants: dict[str, Grant] = {}

    def grant(self, token: str, now: float | None = None) -> Grant | None:
        now = time.time() if now is None else now
        found = self._grants.get(token)
        if found is not None:
            if now < found.expires:
                return found
            self._grants.pop(token, None)
            return None
        claims = self.tokens.verify(token, now)
        if claims is None:
            return None
        found = grant_of(claims)
        if len(self._grants) >= self.max_entries:
            self._grants = {t: g for t, g in self._grants.items() if now < g.expires}
            if len(self._grants) >= self.max_entries:
                self._grants.clear()
        self._grants[token] = found
        return found


API_AUDIENCE = "cyp-api"


@dataclass(frozen=True)
class ApiClaims:
    """A verified /api session token."""

    subject: str
    jti: str
    expires: int
    auth_time: float = 0.0  # when its user signed in (precise): a later change of the user ends it


class ApiTokens:
    """/api session tokens (`POST /api/auth/login`): ES256 JWTs signed with the registry's
    keys for the audience `cyp-api`, so a /v2 token is no /api token and vice versa.

    Verified tokens are cached until they expire (no signature check per request); whether a
    token was revoked is not cached here, except that a token once seen revoked stays so."""

    def __init__(self, keys: KeyRing, issuer: str, ttl: int, max_entries: int = 10_000) -> None:
        self.tokens = Tokens(keys, issuer, API_AUDIENCE, ttl)
        self.ttl = ttl
        self.max_entries = max_entries
        self._verified: dict[str, ApiClaims] = {}
        self._revoked: dict[str, float] = {}  # jti -> expiry

    def issue(self, subject: str, now: float | None = None) -> tuple[str, ApiClaims]:
        now = time.time() if now is None else now
        issued = int(now)
        claims = {
            "iss": self.tokens.issuer,
            "sub": subject,
            "aud": API_AUDIENCE,
            "exp": issued + self.ttl,
            "nbf": issued,
            "iat": issued,
            "jti": secrets.token_urlsafe(16),
            "auth_time": now,
        }
        found = ApiClaims(subject, claims["jti"], claims["exp"], now)
        return self.tokens.sign(claims), found

    def verify(self, token: str, now: float | None = None) -> ApiClaims | None:
        """The claims of a valid, unexpired /api token not known revoked; None otherwise."""
        now = time.time() if now is None else now
        found = self._verified.get(token)
        if found is None:
            claims = self.tokens.verify(token, now)
            if claims is None or "access" in claims:
                return None
            subject, jti = claims.get("sub"), claims.get("jti")
            if not (isinstance(subject, str) and subject and isinstance(jti, str) and jti):
                return None
            auth_time = claims.get("auth_time", claims.get("iat"))
            if not isinstance(auth_time, int | float):
                return None
            found = ApiClaims(subject, jti, int(claims["exp"]), float(auth_time))
            self._remember(token, found, now)
        if now >= found.expires:
            self._verified.pop(token, None)
            return None
        if found.jti in self._revoked:
            return None
        return found

    def _remember(self, token: str, claims: ApiClaims, now: float) -> None:
        if len(self._verified) >= self.max_entries:
            self._verified = {t: c for t, c in self._verified.items() if now < c.expires}
            if len(self._verified) >= self.max_entries:
                self._verified.clear()
        self._verified[token] = claims

    def revoked(self, claims: ApiClaims) -> None:
        """Remember locally that this token was revoked (the view says so for every replica)."""
        now = time.time()
        if len(self._revoked) >= self.max_entries:
            self._revoked = {j: e for j, e in self._revoked.items() if now < e}
        self._revoked[claims.jti] = claims.expires
