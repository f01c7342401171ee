"""/api sessions on the real stack: POST /api/auth/login and /logout, the Bearer guard on
every /api call, revocation seen by every replica, expired and forged tokens, /v2 and /api
tokens not interchangeable, bad input never a 500, secrets never answered nor recorded."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.auth.signing_keys import b64url, unb64url
from tests.apiclient import call, claims, history, history_text, login, refused, token_of
from tests.auth import ADMIN, fetch_token

USERS = "/api/users"


def test_login_answers_a_signed_api_token(module_registry) -> None:
    before = time.time()
    answer = login(module_registry.url, *ADMIN, headers={"User-Agent": "api-test/1"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["success"] is True and set(body["data"]) == {"token", "expires_at"}
    token = body["data"]["token"]
    expires = datetime.fromisoformat(body["data"]["expires_at"].replace("Z", "+00:00"))
    assert expires.tzinfo is not None
    assert abs(expires.timestamp() - (before + 12 * 3600)) < 60  # the default TTL: 12 h
    header = json.loads(unb64url(token.split(".")[0]))
    assert header["alg"] == "ES256" and header["kid"]
    found = claims(token)
    assert found["aud"] == "cyp-api" and found["sub"] == "admin" and found["jti"]
    assert found["exp"] == int(expires.timestamp())
    assert ADMIN[1] not in answer.text
    ok = call(module_registry.url, "GET", USERS, token)
    assert ok.status_code == 200 and ok.json()["success"] is True


@pytest.mark.parametrize(
    "username,password",
    [
        ("admin", "wrong-password"),
        ("nobody-here", "whatever-pw"),
        ("NOT A NAME\x00", "whatever-pw"),
        ("admin", ""),
    ],
)
def test_wrong_credentials_are_401(module_registry, username: str, password: str) -> None:
    answer = login(module_registry.url, username, password)
    refused(answer, 401, "UNAUTHORIZED")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "token" not in answer.json()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{",
        b"[]",
        b'"admin"',
        b"null",
        b"{}",
        b'{"username":"admin"}',
        b'{"password":"x"}',
        b'{"username":1,"password":2}',
        b'{"username":["admin"],"password":{"a":1}}',
        b"\xff\xfe\x00",
        b"[" * 60_000,
        b"1" * 10_000,
    ],
)
def test_malformed_login_is_400(module_registry, body: bytes) -> None:
    answer = httpx.post(
        f"{module_registry.url}/api/auth/login",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    refused(answer, 400, "INVALID_INPUT")


def test_oversized_login_is_refused_in_the_envelope(module_registry) -> None:
    answer = httpx.post(
        f"{module_registry.url}/api/auth/login",
        content=b'{"username":"' + b"a" * 100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code in (400, 413), answer.text
    assert answer.json()["success"] is False


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer not-a-token",
        "Bearer a.b.c",
        "Basic YWRtaW46Y3lwLXRlc3QtYWRtaW4tcHc=",  # admin's password, as Basic: not enough
        "Token abc",
        "Bearer " + "A" * 20_000,
    ],
)
def test_api_needs_a_bearer_token(module_registry, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in [("GET", USERS), ("POST", "/api/auth/logout"), ("GET", USERS + "/admin")]:
        answer = call(module_registry.url, method, path, headers=headers)
        refused(answer, 401, "UNAUTHORIZED")
        assert answer.headers["www-authenticate"].startswith("Bearer")


def _sign(header: dict, payload: dict, key: ec.EllipticCurvePrivateKey) -> str:
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def test_forged_tokens_are_refused(module_registry) -> None:
    url = module_registry.url
    real = token_of(url, *ADMIN)
    head, payload, signature = real.split(".")
    good_claims = claims(real)
    header = json.loads(unb64url(head))
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = [
        # another subject under the original signature
        f"{head}.{b64url(json.dumps({**good_claims, 'sub': 'someone'}).encode())}.{signature}",
        # a later expiry under the original signature
        f"{head}.{b64url(json.dumps({**good_claims, 'exp': 9_999_999_999}).encode())}.{signature}",
        # alg none, no signature
        f"{b64url(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{payload}.",
        # HS256
        f"{b64url(json.dumps({**header, 'alg': 'HS256'}).encode())}.{payload}.{signature}",
        # signed by a key the registry does not have, claiming the registry's kid
        _sign(header, good_claims, other_key),
        # truncated signature
        real[:-10],
    ]
    for token in forged:
        refused(call(url, "GET", USERS, token), 401, "UNAUTHORIZED")
    assert call(url, "GET", USERS, real).status_code == 200


def test_docker_tokens_and_api_tokens_are_not_interchangeable(module_registry) -> None:
    url = module_registry.url
    docker = fetch_token(url, *ADMIN, ["repository:library/x:pull", "registry:catalog:*"])
    assert docker
    refused(call(url, "GET", USERS, docker), 401, "UNAUTHORIZED")
    refused(call(url, "POST", "/api/auth/logout", docker), 401, "UNAUTHORIZED")
    api = token_of(url, *ADMIN)
    for path in ("/v2/", "/v2/_catalog", "/v2/library/x/tags/list"):
        answer = call(url, "GET", path, api)
        assert answer.status_code == 401, answer.text
        assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"  # the OCI form on /v2
    assert call(url, "GET", "/v2/", docker).status_code == 200


def test_logins_are_recorded_without_secrets(module_registry) -> None:
    url = module_registry.url
    database = module_registry.env["CYP_DATABASE_URL"]
    secret = "not-the-password-" + str(time.time_ns())
    refused(login(url, "admin", secret, headers={"User-Agent": "probe/2"}), 401, "UNAUTHORIZED")
    token = token_of(url, *ADMIN)
    failed = [e for e in history(database, "login.failed") if e["details"]["method"] == "api"]
    assert any(
        e["details"]["username"] == "admin" and e["details"]["user_agent"] == "probe/2"
        for e in failed
    )
    assert all(e["client"] == "127.0.0.1" for e in failed)
    succeeded = history(database, "login.succeeded")
    assert any(e["details"]["method"] == "api" and e["actor"] == "admin" for e in succeeded)
    text = history_text(database)
    for leaked in (secret, ADMIN[1], token, token.split(".")[2]):
        assert leaked not in text


def test_logout_revokes_on_every_replica(registry_factory) -> None:
    first = registry_factory().start()
    second = registry_factory().start()
    mine = token_of(first.url, *ADMIN)
    other = token_of(second.url, *ADMIN)
    for replica in (first, second):
        assert call(replica.url, "GET", USERS, mine).status_code == 200
    answer = call(first.url, "POST", "/api/auth/logout", mine)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "data": {"revoked": True}}
    # refused at once, on the replica that signed out and on the other one
    for replica in (second, first):
        refused(call(replica.url, "GET", USERS, mine), 401, "UNAUTHORIZED")
    refused(call(second.url, "POST", "/api/auth/logout", mine), 401, "UNAUTHORIZED")
    # other sessions of the same user live on
    assert call(first.url, "GET", USERS, other).status_code == 200
    assert call(second.url, "POST", "/api/auth/logout", other).status_code == 200
    refused(call(first.url, "GET", USERS, other), 401, "UNAUTHORIZED")
    # the revocation is an event: its id, subject and expiry; never the token
    database = first.env["CYP_DATABASE_URL"]
    revoked = history(database, "token.revoked")
    assert {e["details"]["jti"] for e in revoked} == {claims(mine)["jti"], claims(other)["jti"]}
    assert all(e["actor"] == "admin" and e["details"]["subject"] == "admin" for e in revoked)
    assert {e["details"]["expires"] for e in revoked} == {claims(mine)["exp"], claims(other)["exp"]}
    text = history_text(database)
    assert mine not in text and other not in text
    # a fresh login works again
    assert call(second.url, "GET", USERS, token_of(second.url, *ADMIN)).status_code == 200


def test_expired_tokens_are_refused(registry_factory) -> None:
    registry = registry_factory(CYP_API_TOKEN_TTL="2").start()
    answer = login(registry.url, *ADMIN)
    token = answer.json()["data"]["token"]
    expires = datetime.fromisoformat(answer.json()["data"]["expires_at"].replace("Z", "+00:00"))
    assert expires.timestamp() - time.time() <= 2.5
    assert call(registry.url, "GET", USERS, token).status_code == 200
    time.sleep(max(0.0, expires.timestamp() - time.time()) + 1.2)
    answer = call(registry.url, "GET", USERS, token)
    refused(answer, 401, "UNAUTHORIZED")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert datetime.now(UTC) > expires


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "username": st.one_of(st.text(max_size=70), _json),
        "password": st.one_of(st.text(max_size=20), _json),
        "role": st.one_of(st.sampled_from(["admin", "user", "root", ""]), _json),
        "disabled": _json,
    },
)
_bodies = st.one_of(
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    _fields.map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies, target=st.sampled_from(["login", "create", "patch"]))
def test_bad_bodies_never_500(module_registry, body: bytes, target: str) -> None:
    url = module_registry.url
    global _ADMIN_TOKEN
    if _ADMIN_TOKEN is None:
        _ADMIN_TOKEN = token_of(url, *ADMIN)
    method, path, token = {
        "login": ("POST", "/api/auth/login", None),
        "create": ("POST", USERS, _ADMIN_TOKEN),
        "patch": ("PATCH", USERS + "/nobody-at-all", _ADMIN_TOKEN),
    }[target]
    answer = call(url, method, path, token, content=body)
    assert answer.status_code < 500, answer.text
    envelope = answer.json()
    assert isinstance(envelope["success"], bool)
    if not envelope["success"]:
        assert answer.status_code in (400, 401, 404, 409, 413), answer.text
        assert set(envelope["error"]) == {"code", "message"}
    assert "$argon2" not in answer.text


_ADMIN_TOKEN: str | None = None
