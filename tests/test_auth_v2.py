"""Docker token authentication on the real stack: every /v2 route refuses unauthenticated
requests with 401 and the exact Bearer challenge; `/token` (GET with Basic, POST OAuth2 form,
refresh tokens) grants exactly the permitted subset of the requested scopes; expired, forged,
`alg: none` and wrong-audience tokens are refused; no Authorization header ever gives a 5xx;
the catalog lists only what the caller may pull; logins are in the history without secrets;
rotating the signing key keeps issued tokens valid."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.auth.jwts import Tokens
from api.auth.signing_keys import KeyRing, b64url
from cyp_registry.wiring import eventsourcing_env
from domain.caller import SYSTEM
from domain.registry import Registry
from tests.support import (
    ROOT,
    RegistryProcess,
    as_url,
    create_database,
    delete_stream,
    drop_database,
    wait_until,
)

ADMIN_PASSWORD = "cyp-test-admin-pw"
ALICE_PASSWORD = "alice-secret-pw-1"
BOB_PASSWORD = "bob-secret-pw-22"
CAROL_PASSWORD = "carol-secret-pw-3"
SERVICE = "cyp-registry"
DIGEST = "sha256:" + "a" * 64


@pytest.fixture(scope="module")
def stack(
    pg_admin_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RegistryProcess, str]]:
    """One registry for the module, with users alice, bob and carol (disabled)."""
    url = create_database(pg_admin_url)
    proc = RegistryProcess(
        url, nats_url, tmp_path_factory.mktemp("auth") / "data", CYP_ADMIN_PASSWORD=ADMIN_PASSWORD
    )
    try:
        proc.start()
        app = Registry(env=eventsourcing_env(url))
        try:
            app.register_user("alice", ALICE_PASSWORD, "user", SYSTEM)
            app.register_user("bob", BOB_PASSWORD, "user", SYSTEM)
            app.register_user("carol", CAROL_PASSWORD, "user", SYSTEM)
            app.disable_user("carol", SYSTEM)
        finally:
            app.close()
        wait_until(lambda: _rows(url, "SELECT 1 FROM users WHERE name = 'carol' AND disabled"))
        yield proc, url
    finally:
        proc.stop()
        delete_stream(nats_url, proc.stream)
        drop_database(pg_admin_url, url)


def _rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _claims(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def get_token(
    reg: RegistryProcess, user: str | None, password: str = "", *scopes: str
) -> httpx.Response:
    params = [("service", SERVICE)] + [("scope", s) for s in scopes]
    headers = _basic(user, password) if user is not None else {}
    return httpx.get(f"{reg.url}/token", params=params, headers=headers, timeout=30)


def token(reg: RegistryProcess, user: str | None, password: str = "", *scopes: str) -> str:
    answer = get_token(reg, user, password, *scopes)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def _challenge(reg: RegistryProcess, scope: str | None = None, error: str | None = None) -> str:
    value = f'Bearer realm="{reg.url}/token",service="{SERVICE}"'
    if scope:
        value += f',scope="{scope}"'
    if error:
        value += f',error="{error}"'
    return value


def _assert_unauthorized(answer: httpx.Response, expected_challenge: str) -> None:
    assert answer.status_code == 401, (answer.request.method, answer.request.url, answer.text)
    assert answer.headers["www-authenticate"] == expected_challenge
    if answer.request.method != "HEAD":
        assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"


ROUTES = [
    ("GET", "/v2/", None),
    ("HEAD", "/v2/", None),
    ("GET", "/v2", None),
    ("GET", "/v2/_catalog", "registry:catalog:*"),
    ("GET", "/v2/alice/app/tags/list", "repository:alice/app:pull"),
    ("GET", "/v2/alice/app/manifests/latest", "repository:alice/app:pull"),
    ("HEAD", "/v2/alice/app/manifests/latest", "repository:alice/app:pull"),
    ("PUT", "/v2/alice/app/manifests/latest", "repository:alice/app:push"),
    ("DELETE", f"/v2/alice/app/manifests/{DIGEST}", "repository:alice/app:delete"),
    ("GET", f"/v2/alice/app/blobs/{DIGEST}", "repository:alice/app:pull"),
    ("HEAD", f"/v2/alice/app/blobs/{DIGEST}", "repository:alice/app:pull"),
    ("DELETE", f"/v2/alice/app/blobs/{DIGEST}", "repository:alice/app:delete"),
    ("POST", "/v2/alice/app/blobs/uploads/", "repository:alice/app:push"),
    # a mount names its source too (as Distribution does): one token then covers it
    (
        "POST",
        f"/v2/app/blobs/uploads/?mount={DIGEST}&from=bob/x",
        "repository:app:pull,push repository:bob/x:pull",
    ),
    ("GET", "/v2/alice/app/blobs/uploads/some-id", "repository:alice/app:push"),
    ("PATCH", "/v2/alice/app/blobs/uploads/some-id", "repository:alice/app:push"),
    ("PUT", f"/v2/alice/app/blobs/uploads/some-id?digest={DIGEST}", "repository:alice/app:push"),
    ("DELETE", "/v2/alice/app/blobs/uploads/some-id", "repository:alice/app:push"),
    ("GET", f"/v2/alice/app/referrers/{DIGEST}", "repository:alice/app:pull"),
    ("GET", "/v2/Invalid//name/tags/list", None),
    ("GET", "/v2/no-such-endpoint", None),
    ("PUT", "/v2/alice/app/tags/list", None),
]


def test_every_v2_route_unauthenticated_gets_the_challenge(stack) -> None:
    reg, _ = stack
    with httpx.Client(base_url=reg.url, timeout=30) as client:
        for method, path, scope in ROUTES:
            answer = client.request(method, path, content=b"{}" if method == "PUT" else None)
            _assert_unauthorized(answer, _challenge(reg, scope))
            # a malformed or foreign Authorization header is no better
            for header in ["Bearer", "Bearer  x y", "Bearer x.y.z", "Basic YWRtaW46eA==", "x"]:
                answer = client.request(method, path, headers={"Authorization": header})
                _assert_unauthorized(answer, _challenge(reg, scope))
        assert client.get("/health").status_code == 200


def test_admin_token_flow(stack) -> None:
    reg, _ = stack
    scopes = ("repository:x/y:pull,push", "registry:catalog:*")
    answer = get_token(reg, "admin", ADMIN_PASSWORD, *scopes)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    claims = _claims(body["token"])
    assert claims["iss"] == "cyp-registry" and claims["sub"] == "admin"
    assert claims["aud"] == SERVICE and claims["exp"] - claims["iat"] == 300
    assert claims["access"] == [
        {"type": "repository", "name": "x/y", "actions": ["pull", "push"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    ok = httpx.get(f"{reg.url}/v2/", headers=bearer(body["token"]))
    assert ok.status_code == 200 and ok.json() == {}
    assert httpx.get(f"{reg.url}/v2/_catalog", headers=bearer(body["token"])).status_code == 200
    listed = httpx.get(f"{reg.url}/v2/x/y/tags/list", headers=bearer(body["token"]))
    assert listed.status_code == 404  # allowed; the repository does not exist
    # without credentials: a token without access, which opens nothing, not even the ping
    anonymous = get_token(reg, None, "", "repository:x/y:pull")
    assert anonymous.status_code == 200 and _claims(anonymous.json()["token"])["access"] == []
    _assert_unauthorized(
        httpx.get(f"{reg.url}/v2/", headers=bearer(anonymous.json()["token"])), _challenge(reg)
    )
    _assert_unauthorized(
        httpx.get(f"{reg.url}/v2/x/y/tags/list", headers=bearer(anonymous.json()["token"])),
        _challenge(reg, "repository:x/y:pull", "insufficient_scope"),
    )


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("admin", "wrong-password"),
        ("alice", BOB_PASSWORD),
        ("nobody", ALICE_PASSWORD),
        ("carol", CAROL_PASSWORD),  # disabled
        ("", ""),
        ("a\x00b", "pass\x00word"),
        ("x" * 5000, "y" * 5000),
    ],
)
def test_bad_credentials_get_401(stack, user: str, password: str) -> None:
    reg, _ = stack
    answer = get_token(reg, user, password, "repository:alice/app:pull")
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert "token" not in answer.json()
    assert not password or password not in answer.text


def test_user_gets_exactly_the_permitted_subset(stack) -> None:
    reg, _ = stack
    asked = (
        "repository:alice/app:pull,push,delete,frob",
        "repository:alice:pull",
        "repository:bob/app:pull,push",
        "repository:app:pull",
        "registry:catalog:*",
    )
    claims = _claims(token(reg, "alice", ALICE_PASSWORD, *asked))
    assert claims["sub"] == "alice"
    assert claims["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull", "push", "delete"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]


def _push_blob(reg: RegistryProcess, name: str, token_value: str, data: bytes) -> httpx.Response:
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return httpx.post(
        f"{reg.url}/v2/{name}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={**bearer(token_value), "Content-Type": "application/octet-stream"},
        timeout=30,
    )


def _push_image(reg: RegistryProcess, name: str, token_value: str, tag: str = "v1") -> None:
    import hashlib

    config = json.dumps({"architecture": "amd64", "os": "linux", "n": name}).encode()
    layer = f"layer of {name}".encode()
    for blob in (config, layer):
        assert _push_blob(reg, name, token_value, blob).status_code == 201

    def descriptor(data: bytes, media_type: str) -> dict[str, Any]:
        return {
            "mediaType": media_type,
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor(config, "application/vnd.oci.image.config.v1+json"),
        "layers": [descriptor(layer, "application/vnd.oci.image.layer.v1.tar")],
    }
    answer = httpx.put(
        f"{reg.url}/v2/{name}/manifests/{tag}",
        content=json.dumps(manifest).encode(),
        headers={
            **bearer(token_value),
            "Content-Type": "application/vnd.oci.image.manifest.v1+json",
        },
        timeout=30,
    )
    assert answer.status_code == 201, answer.text


def test_push_pull_in_the_personal_namespace_only(stack) -> None:
    reg, _ = stack
    mine = token(reg, "alice", ALICE_PASSWORD, "repository:alice/app:pull,push")
    _push_image(reg, "alice/app", mine)
    pulled = httpx.get(
        f"{reg.url}/v2/alice/app/manifests/v1",
        headers={**bearer(mine), "Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert pulled.status_code == 200
    # the history says who pushed
    _, url = stack
    assert wait_until(
        lambda: _rows(
            url, "SELECT 1 FROM history WHERE actor = 'alice' AND repository = 'alice/app'"
        )
    )
    # bob's namespace: the token service grants nothing, the registry refuses
    theirs = token(reg, "alice", ALICE_PASSWORD, "repository:bob/app:pull,push")
    assert _claims(theirs)["access"] == []
    refused = _push_blob(reg, "bob/app", theirs, b"data")
    _assert_unauthorized(refused, _challenge(reg, "repository:bob/app:push", "insufficient_scope"))
    # a pull token does not push
    pull_only = token(reg, "alice", ALICE_PASSWORD, "repository:alice/app:pull")
    _assert_unauthorized(
        _push_blob(reg, "alice/app", pull_only, b"more"),
        _challenge(reg, "repository:alice/app:push", "insufficient_scope"),
    )
    # mounting from a repository the caller may not pull is an ordinary upload instead
    admin = token(reg, "admin", ADMIN_PASSWORD, "repository:bob/app:pull,push")
    assert _push_blob(reg, "bob/app", admin, b"bob's secret layer").status_code == 201
    import hashlib

    digest = "sha256:" + hashlib.sha256(b"bob's secret layer").hexdigest()
    mount = httpx.post(
        f"{reg.url}/v2/alice/other/blobs/uploads/",
        params={"mount": digest, "from": "bob/app"},
        headers=bearer(token(reg, "alice", ALICE_PASSWORD, "repository:alice/other:pull,push")),
    )
    assert mount.status_code == 202, mount.text  # not 201: nothing was mounted


def test_catalog_lists_only_what_the_caller_may_pull(stack) -> None:
    reg, _ = stack
    admin = token(
        reg,
        "admin",
        ADMIN_PASSWORD,
        "repository:library-app:pull,push",
        "repository:bob/cat:pull,push",
        "repository:alice/cat:pull,push",
        "repository:alicex/cat:pull,push",
    )
    for name in ("library-app", "bob/cat", "alice/cat", "alicex/cat"):
        _push_image(reg, name, admin)

    def catalog(user: str, password: str, **params: Any) -> list[str]:
        value = token(reg, user, password, "registry:catalog:*")
        answer = httpx.get(f"{reg.url}/v2/_catalog", params=params, headers=bearer(value))
        assert answer.status_code == 200, answer.text
        return answer.json()["repositories"]

    everything = catalog("admin", ADMIN_PASSWORD)
    assert {"library-app", "bob/cat", "alice/cat", "alicex/cat"} <= set(everything)
    alices = catalog("alice", ALICE_PASSWORD)
    assert "alice/cat" in alices and all(n.startswith("alice/") for n in alices)
    assert catalog("alice", ALICE_PASSWORD, n=1) == [sorted(alices)[0]]
    bobs = catalog("bob", BOB_PASSWORD)
    assert "bob/cat" in bobs and all(n.startswith("bob/") for n in bobs)
    # a token without the catalog scope
    plain = token(reg, "bob", BOB_PASSWORD)
    _assert_unauthorized(
        httpx.get(f"{reg.url}/v2/_catalog", headers=bearer(plain)),
        _challenge(reg, "registry:catalog:*", "insufficient_scope"),
    )


def _server_tokens(reg: RegistryProcess, service: str = SERVICE, ttl: int = 300) -> Tokens:
    return Tokens(KeyRing(reg.data_dir / "keys").load(create=False), "cyp-registry", service, ttl)


def test_expired_forged_alg_none_and_wrong_audience_tokens_are_refused(stack, tmp_path) -> None:
    reg, _ = stack
    access = [{"type": "repository", "name": "x/y", "actions": ["pull"]}]
    server = _server_tokens(reg)
    valid, claims = server.issue("admin", access)
    expired, _ = server.issue("admin", access, now=time.time() - 400)
    wrong_aud, _ = _server_tokens(reg, "another-registry").issue("admin", access)
    forged, _ = Tokens(KeyRing(tmp_path / "k").load(), "cyp-registry", SERVICE, 300).issue(
        "admin", access
    )
    header = {"typ": "JWT", "alg": "none", "kid": KeyRing(reg.data_dir / "keys").load().kids()[0]}
    none = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode()) + "."
    refresh = server.issue_refresh("admin", 3600)
    path = f"{reg.url}/v2/x/y/tags/list"
    assert httpx.get(path, headers=bearer(valid)).status_code == 404  # accepted (no such repo)
    for bad in (expired, wrong_aud, forged, none, refresh, valid[:-3]):
        _assert_unauthorized(
            httpx.get(path, headers=bearer(bad)), _challenge(reg, "repository:x/y:pull")
        )


_header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=200,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        _header_text,
        _header_text.map(lambda t: "Bearer " + t),
        _header_text.map(lambda t: "Basic " + t),
        st.binary(max_size=100).map(lambda b: "Basic " + base64.b64encode(b).decode()),
        st.lists(st.text("ab.-_=", max_size=40), min_size=1, max_size=5).map(
            lambda p: "Bearer " + ".".join(p)
        ),
    ),
    st.sampled_from(
        [
            ("GET", "/v2/"),
            ("GET", "/v2/_catalog"),
            ("GET", "/v2/a/b/manifests/latest"),
            ("POST", "/v2/a/blobs/uploads/"),
            ("GET", "/token?service=cyp-registry&scope=repository:a:pull"),
        ]
    ),
)
def test_no_authorization_header_gives_a_5xx(stack, header: str, route: tuple[str, str]) -> None:
    reg, _ = stack
    method, path = route
    answer = httpx.request(
        method,
        f"{reg.url}{path}",
        headers={"Authorization": header.strip().encode("latin-1")},
        timeout=30,
    )
    assert answer.status_code < 500, (header, answer.text)
    if path.startswith("/v2"):
        assert answer.status_code == 401


def test_oauth2_form_and_refresh_tokens(stack) -> None:
    reg, _ = stack
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": ALICE_PASSWORD,
        "service": SERVICE,
        "scope": "repository:alice/app:pull repository:bob/app:pull",
        "client_id": "docker",
        "access_type": "offline",
    }
    answer = httpx.post(f"{reg.url}/token", data=form)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["scope"] == "repository:alice/app:pull"
    assert _claims(body["access_token"])["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull"]}
    ]
    refresh = body["refresh_token"]
    # the refresh token is not an access token
    _assert_unauthorized(httpx.get(f"{reg.url}/v2/", headers=bearer(refresh)), _challenge(reg))
    again = httpx.post(
        f"{reg.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": SERVICE,
            "scope": "repository:alice/app:pull,push",
            "client_id": "docker",
        },
    )
    assert again.status_code == 200, again.text
    assert _claims(again.json()["access_token"])["access"][0]["actions"] == ["pull", "push"]
    # without offline access: no refresh token
    online = httpx.post(f"{reg.url}/token", data={**form, "access_type": ""}).json()
    assert "refresh_token" not in online
    # wrong password, forged refresh token, unknown grant type
    wrong = httpx.post(f"{reg.url}/token", data={**form, "password": "nope-nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_grant"
    bad_refresh = httpx.post(
        f"{reg.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh[:-4], "service": SERVICE},
    )
    assert bad_refresh.status_code == 401
    unknown = httpx.post(f"{reg.url}/token", data={"grant_type": "client_credentials"})
    assert unknown.status_code == 400
    # a change of the user (here: the same password set again) ends older refresh tokens
    _, url = stack
    app = Registry(env=eventsourcing_env(url))
    try:
        app.change_password("alice", ALICE_PASSWORD, SYSTEM)
    finally:
        app.close()
    wait_until(
        lambda: _rows(
            url,
            "SELECT 1 FROM history WHERE type = 'user.password_changed'"
            " AND details->>'username' = 'alice'",
        )
    )
    time.sleep(0.5)
    stale = httpx.post(
        f"{reg.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE},
    )
    assert stale.status_code == 401, stale.text


def test_login_events_are_in_the_history_without_secrets(stack) -> None:
    reg, url = stack
    agent = "test-agent/1.0"
    headers = {"User-Agent": agent}
    good = httpx.get(f"{reg.url}/token", headers={**_basic("bob", BOB_PASSWORD), **headers})
    bad = httpx.get(f"{reg.url}/token", headers={**_basic("bob", "guess-guess"), **headers})
    assert good.status_code == 200 and bad.status_code == 401
    query = (
        "SELECT type, actor, client, details FROM history"
        " WHERE type LIKE 'login.%%' AND details->>'user_agent' = %s ORDER BY position"
    )
    found = wait_until(lambda: len(_rows(url, query, agent)) >= 2 and _rows(url, query, agent))
    (ok_type, ok_actor, ok_client, ok_details), (bad_type, bad_actor, _, bad_details) = found[:2]
    assert (ok_type, ok_actor, ok_client) == ("login.succeeded", "bob", "127.0.0.1")
    assert ok_details == {
        "username": "bob",
        "method": "docker",
        "user_agent": agent,
        "credential": "",  # the password, not an access token
    }
    assert (bad_type, bad_actor) == ("login.failed", "anonymous")
    assert bad_details["reason"] == "invalid credentials" and bad_details["username"] == "bob"
    disabled = wait_until(
        lambda: (
            _rows(
                url,
                "SELECT details->>'reason' FROM history WHERE type = 'login.failed'"
                " AND details->>'username' = 'carol'",
            )
            or (get_token(reg, "carol", CAROL_PASSWORD) and None)
        )
    )
    assert disabled[0][0] == "user disabled"
    secrets = (ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD, CAROL_PASSWORD, "guess-guess")
    history = " ".join(str(r) for r in _rows(url, "SELECT details::text, actor FROM history"))
    log = reg.log.read_text(errors="replace")
    for secret in secrets:
        assert secret not in history and secret not in log


def _keys_cli(reg: RegistryProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYP_")}
    env.update(CYP_DATABASE_URL=as_url(reg.env["CYP_DATABASE_URL"]), CYP_LOG_LEVEL="warning")
    return subprocess.run(
        [sys.executable, "-m", "cyp_registry.cli", "keys", *args, "--data-dir", str(reg.data_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_key_rotation_keeps_old_tokens_valid(stack, tmp_path: Path) -> None:
    reg, _ = stack

    def kid(value: str) -> str:
        return json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))["kid"]

    before = [token(reg, "admin", ADMIN_PASSWORD) for _ in range(2)]  # neither used yet
    old_kid = kid(before[0])
    rotated = _keys_cli(reg, "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new = wait_until(lambda: (t := token(reg, "admin", ADMIN_PASSWORD)) and kid(t) != old_kid and t)
    assert httpx.get(f"{reg.url}/v2/", headers=bearer(new)).status_code == 200
    assert httpx.get(f"{reg.url}/v2/", headers=bearer(before[0])).status_code == 200
    listed = _keys_cli(reg, "list")
    assert old_kid in listed.stdout and f"{kid(new)}  (current)" in listed.stdout
    # the old key, kept aside: fresh tokens signed with it tell when the server let it go
    aside = tmp_path / "old-key"
    aside.mkdir()
    for pem in (reg.data_dir / "keys").glob(f"*{old_kid}*.pem"):
        shutil.copy(pem, aside / pem.name)
    old_signer = Tokens(KeyRing(aside).load(create=False), "cyp-registry", SERVICE, 300)
    removed = _keys_cli(reg, "remove", old_kid)
    assert removed.returncode == 0, removed.stderr

    def fresh_old_token_refused() -> bool:
        fresh, _ = old_signer.issue("admin", [])
        return httpx.get(f"{reg.url}/v2/", headers=bearer(fresh)).status_code == 401

    assert wait_until(fresh_old_token_refused)  # the server rereads its keys about once a second
    # a token of the removed key the registry has not cached is refused; new ones still work
    _assert_unauthorized(httpx.get(f"{reg.url}/v2/", headers=bearer(before[1])), _challenge(reg))
    assert httpx.get(f"{reg.url}/v2/", headers=bearer(new)).status_code == 200
    assert _keys_cli(reg, "remove", kid(new)).returncode == 1  # never the only key
    keys = list((reg.data_dir / "keys").glob("*.pem"))
    assert len(keys) == 1 and all(p.stat().st_mode & 0o077 == 0 for p in keys)


def test_realm_follows_the_host_the_client_used(stack) -> None:
    reg, _ = stack
    answer = httpx.get(f"{reg.url}/v2/", headers={"Host": f"localhost:{reg.port}"})
    assert answer.headers["www-authenticate"] == (
        f'Bearer realm="http://localhost:{reg.port}/token",service="{SERVICE}"'
    )
    evil = httpx.get(f"{reg.url}/v2/", headers={"Host": 'x",service="evil'})
    assert evil.status_code in (400, 401)
    assert 'service="evil' not in evil.headers.get("www-authenticate", "")


def test_first_start_makes_one_private_signing_key(stack) -> None:
    reg, _ = stack
    folder = Path(reg.data_dir) / "keys"
    assert folder.stat().st_mode & 0o077 == 0
