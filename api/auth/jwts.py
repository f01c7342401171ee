"""Signed bearer tokens: ES256 JWTs as the distribution token specification describes,
signed with the keys of `api.auth.signing_keys`; the per-process caches of verified ones.

Only ES256 is accepted: `alg: none`, HS256 (with the public key as the secret) or anything
else is refused before a signature is looked at.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from api.auth.signing_keys import KeyRing, b64url, int_bytes, unb64url
from api.expiring import ExpiringMap

ALGORITHM = "ES256"
MAX_TOKEN_LENGTH = 16 * 1024
NBF_LEEWAY = 5  # seconds of clock difference between replicas tolerated for nbf/iat
_REFRESH_USE = "refresh"


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
        return signing_input + "." + b64url(int_bytes(r) + int_bytes(s))

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
        self._grants: ExpiringMap[str, Grant] = ExpiringMap(max_entries)

    def grant(self, token: str, now: float | None = None) -> Grant | None:
        now = time.time() if now is None else now
        found = self._grants.get(token, now)
        if found is not None:
            return found
        claims = self.tokens.verify(token, now)
        if claims is None:
            return None
        found = grant_of(claims)
        self._grants.put(token, found, found.expires, now)
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
        self._verified: ExpiringMap[str, ApiClaims] = ExpiringMap(max_entries)
        self._revoked: ExpiringMap[str, bool] = ExpiringMap(max_entries)  # by jti

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
        found = self._verified.get(token, now)
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
            if now >= found.expires:
                return None
            self._verified.put(token, found, found.expires, now)
        if self._revoked.get(found.jti, now):
            return None
        return found

    def revoked(self, claims: ApiClaims) -> None:
        """Remember locally that this token was revoked (the view says so for every replica)."""
        self._revoked.put(claims.jti, True, claims.expires)
