"""Token authentication without a server: scopes, the ES256 JWTs (only valid ones verify:
expired, not yet valid, forged, `alg: none`, HS256, wrong audience or issuer, tampered are
refused), the signing keys (0600 files, RFC 7638 kids, rotation keeps old tokens valid,
removal ends them) and the cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from api.auth.jwts import TokenCache, Tokens, grant_of
from api.auth.signing_keys import KeyRing, b64url, key_id
from domain.documents import event_fields, event_kind
from domain.identity import Login
from domain.policy import Scope, parse_scope, parse_scopes

SERVICE = "cyp-registry"


# -- scopes and policy -------------------------------------------------------------------------
def test_parse_scope() -> None:
    assert parse_scope("repository:alice/app:pull,push") == Scope(
        "repository", "alice/app", ("pull", "push")
    )
    assert parse_scope("registry:catalog:*") == Scope("registry", "catalog", ("*",))
    assert parse_scope("repository:a:pull,pull,,push") == Scope("repository", "a", ("pull", "push"))
    for bad in ["", "repository", "repository:a", "repository::pull", ":a:pull", "repository:a:"]:
        assert parse_scope(bad) is None, bad
    assert parse_scopes(["repository:a:pull repository:b:push", "junk"]) == [
        Scope("repository", "a", ("pull",)),
        Scope("repository", "b", ("push",)),
    ]


# -- keys --------------------------------------------------------------------------------------
@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing(tmp_path / "keys").load()


def tokens_of(ring: KeyRing, service: str = SERVICE, ttl: int = 300) -> Tokens:
    return Tokens(ring, "cyp-registry", service, ttl)


def test_first_key_is_private_and_named_by_its_thumbprint(ring: KeyRing) -> None:
    files = list(ring.directory.glob("*.pem"))
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ring.directory).st_mode) == 0o700
    kid = ring.current.kid
    assert files[0].name.endswith(f"-{kid}.pem")
    assert kid == key_id(ring.current.public) and len(kid) == 43
    # loading again reads the same key, makes no new one
    assert KeyRing(ring.directory).load().kids() == [kid]


def test_rotation_keeps_old_tokens_valid_until_the_key_is_removed(ring: KeyRing) -> None:
    tokens = tokens_of(ring)
    old_kid = ring.current.kid
    old, _ = tokens.issue("alice", [])
    new_kid = ring.rotate().kid
    assert new_kid != old_kid and ring.current.kid == new_kid
    new, _ = tokens.issue("alice", [])
    assert _header(new)["kid"] == new_kid
    assert tokens.verify(old) and tokens.verify(new)
    # another process (a replica, the CLI) sees the same directory
    other = tokens_of(KeyRing(ring.directory).load())
    assert other.verify(old) and other.verify(new)
    ring.remove(old_kid)
    assert tokens.verify(old) is None and tokens.verify(new)
    time.sleep(1.1)
    assert other.verify(old) is None and other.verify(new)
    with pytest.raises(ValueError):
        ring.remove(new_kid)
    assert not ring.remove("no-such-kid")


# -- tokens ------------------------------------------------------------------------------------
def _header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def _claims(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def _forge(header: dict, claims: dict, signature: bytes = b"") -> str:
    head = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return head + "." + b64url(signature)


def test_claims(ring: KeyRing) -> None:
    access = [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]
    token, claims = tokens_of(ring).issue("alice", access)
    assert _claims(token) == claims
    assert _header(token) == {"typ": "JWT", "alg": "ES256", "kid": ring.current.kid}
    assert claims["iss"] == "cyp-registry" and claims["sub"] == "alice"
    assert claims["aud"] == SERVICE and claims["access"] == access
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"]
    assert len(claims["jti"]) >= 16
    assert tokens_of(ring).verify(token) == claims


def test_invalid_tokens_are_refused(ring: KeyRing, tmp_path: Path) -> None:
    tokens = tokens_of(ring)
    now = time.time()
    good, claims = tokens.issue("root", [], now)
    head, body, sig = good.split(".")
    expired, _ = tokens.issue("root", [], now - 301)
    future, _ = tokens.issue("root", [], now + 60)
    wrong_aud, _ = tokens_of(ring, "other-service").issue("root", [])
    stranger = tokens_of(KeyRing(tmp_path / "other-keys").load())
    forged, _ = stranger.issue("root", [])
    tampered_claims = dict(claims, sub="admin")
    tampered = head + "." + b64url(json.dumps(tampered_claims).encode()) + "." + sig
    none = _forge({"typ": "JWT", "alg": "none", "kid": ring.current.kid}, claims)
    public_pem = ring.current.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_head = {"typ": "JWT", "alg": "HS256", "kid": ring.current.kid}
    hs_input = (
        b64url(json.dumps(hs_head).encode()) + "." + b64url(json.dumps(claims).encode())
    ).encode()
    hs256 = (
        hs_input.decode() + "." + b64url(hmac.new(public_pem, hs_input, hashlib.sha256).digest())
    )
    unknown_kid = _forge({"typ": "JWT", "alg": "ES256", "kid": "nope"}, claims, b"x" * 64)
    refresh = tokens.issue_refresh("root", 3600)
    for bad in [
        expired,
        future,
        wrong_aud,
        forged,
        tampered,
        none,
        none + "AAAA",
        hs256,
        unknown_kid,
        refresh,
        good + "x",
        good[:-2],
        "",
        "a.b",
        "a.b.c",
        "...",
        "ä.b.c",
        "x" * 20000,
    ]:
        assert tokens.verify(bad) is None, bad[:80]
    assert tokens.verify(good) is not None
    assert tokens.verify_refresh(refresh)["sub"] == "root"
    assert tokens.verify_refresh(good) is None


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_any_text_never_verifies_and_never_raises(text: str) -> None:
    tokens = _shared_tokens()
    assert tokens.verify(text) is None
    assert tokens.verify_refresh(text) is None


_SHARED: list[Tokens] = []


def _shared_tokens() -> Tokens:
    if not _SHARED:
        import tempfile

        _SHARED.append(tokens_of(KeyRing(Path(tempfile.mkdtemp()) / "keys").load()))
    return _SHARED[0]


def test_cache_keeps_verified_tokens_until_they_expire(ring: KeyRing) -> None:
    tokens = tokens_of(ring, ttl=2)
    cache = TokenCache(tokens, max_entries=3)
    access = [{"type": "repository", "name": "a", "actions": ["pull", "push"]}]
    token, claims = tokens.issue("alice", access)
    grant = cache.grant(token)
    assert grant == grant_of(claims) and grant.subject == "alice"
    assert grant.allows("repository", "a", ("pull", "push"))
    assert not grant.allows("repository", "a", ("delete",))
    assert not grant.allows("repository", "b", ("pull",))
    assert cache.grant(token) is grant
    assert cache.grant("not a token") is None
    for _ in range(5):  # bounded
        cache.grant(tokens.issue("bob", [])[0])
        assert len(cache._grants) <= 3
    assert cache.grant(token, now=claims["exp"]) is None


def test_login_events_never_carry_a_password() -> None:
    good = Login.attempt("alice", "docker", "10.0.0.1", "docker/27")
    bad = Login.attempt("x" * 1000, "docker", "10.0.0.2", "curl", failure="invalid credentials")
    assert good.id != bad.id
    (ok,) = good.collect_events()
    (failed,) = bad.collect_events()
    assert event_kind(ok) == "login.succeeded" and event_kind(failed) == "login.failed"
    assert event_fields(ok) == {
        "username": "alice",
        "method": "docker",
        "user_agent": "docker/27",
        "actor": "alice",
        "client": "10.0.0.1",
        "credential": "",
    }
    fields = event_fields(failed)
    assert fields["actor"] == "anonymous" and fields["reason"] == "invalid credentials"
    assert len(fields["username"]) == 256 and "password" not in json.dumps(fields)


def test_verified_passwords_cache() -> None:
    from api.auth.verified_passwords import VerifiedPasswords

    cache = VerifiedPasswords(ttl=60, max_entries=2)
    assert not cache.known("alice", "$hash1", "pw")
    cache.remember("alice", "$hash1", "pw")
    assert cache.known("alice", "$hash1", "pw")
    assert not cache.known("alice", "$hash1", "pw2")  # another password
    assert not cache.known("alice", "$hash2", "pw")  # the password changed: a new hash
    assert not cache.known("bob", "$hash1", "pw")
    assert all(b"pw" not in mac for mac in cache._entries.values())
    cache.remember("bob", "$h", "x")
    cache.remember("carol", "$h", "y")  # over the bound: never more than max_entries
    assert len(cache._entries) <= 2
    expired = VerifiedPasswords(ttl=0)
    expired.remember("alice", "$hash1", "pw")
    assert not expired.known("alice", "$hash1", "pw")


_entry = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["repository", "registry", "other"]),
        "name": st.sampled_from(["a", "a/b", "catalog", "b"]),
        "actions": st.lists(st.sampled_from(["pull", "push", "delete", "*", "x"]), max_size=3),
    }
)


@given(
    st.lists(st.one_of(_entry, st.integers(), st.text(max_size=5)), max_size=5),
    st.sampled_from(["repository", "registry"]),
    st.sampled_from(["a", "a/b", "catalog", "ab", "a/"]),
    st.lists(st.sampled_from(["pull", "push", "delete"]), min_size=1, max_size=3),
)
def test_a_grant_allows_nothing_beyond_its_claims(access, kind, name, wanted) -> None:
    """Whatever the access claims hold (well-formed or not), a request is allowed only if
    every action it needs is claimed for exactly its type and name (or `*` there)."""
    grant = grant_of({"sub": "alice", "exp": time.time() + 60, "access": access})
    claimed = {
        action
        for entry in access
        if isinstance(entry, dict) and (entry["type"], entry["name"]) == (kind, name)
        for action in entry["actions"]
    }
    expected = all(a in claimed or "*" in claimed for a in wanted)
    assert grant.allows(kind, name, tuple(wanted)) is expected
