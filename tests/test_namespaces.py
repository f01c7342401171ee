"""Namespaces, roles, personal access tokens and robots on the real stack.

The role x operation matrix: for each kind of caller (system admin, owner, maintainer,
developer, reader, a signed-in outsider, anonymous, a pull-only personal access token and a
push robot) every /v2 operation — pull, push, mount from another namespace, delete a manifest,
delete a tag, list tags, the catalog — gets exactly the expected answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from cyp_registry.wiring import eventsourcing_env
from domain.access_tokens import PERSONAL, new_personal_secret
from domain.caller import SYSTEM
from domain.registry import Registry
from tests.apiclient import call, history, history_text, refused, token_of
from tests.auth import ADMIN
from tests.images import digest_of, push_image
from tests.support import (
    RegistryProcess,
    create_database,
    delete_stream,
    drop_database,
    wait_until,
)

PASSWORDS = {
    "olive": "olive-password-1",  # owner of acme
    "mark": "mark-password-22",  # maintainer
    "dora": "dora-password-333",  # developer
    "rita": "rita-password-4444",  # reader
    "otto": "otto-password-55555",  # outsider
}
ROLES = {"olive": "owner", "mark": "maintainer", "dora": "developer", "rita": "reader"}


@pytest.fixture(scope="module")
def stack(
    pg_admin_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RegistryProcess, str]]:
    url = create_database(pg_admin_url)
    proc = RegistryProcess(url, nats_url, tmp_path_factory.mktemp("ns") / "data")
    try:
        proc.start()
        admin = token_of(proc.url, *ADMIN)
        for user, password in PASSWORDS.items():
            body = {"username": user, "password": password, "role": "user"}
            assert call(proc.url, "POST", "/api/users", admin, json=body).status_code == 201
        yield proc, url
    finally:
        proc.stop()
        delete_stream(nats_url, proc.stream)
        drop_database(pg_admin_url, url)


def _ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is True
    return body["data"]


def _post(url: str, path: str, session: str | None, body: dict[str, Any]) -> Any:
    """POST an /api body that must be created (201); its data."""
    return _ok(call(url, "POST", path, session, json=body), 201)


def api_token(reg: RegistryProcess, user: str) -> str:
    return token_of(reg.url, user, PASSWORDS[user])


# -- namespaces and members over /api ----------------------------------------------------------
def test_every_user_owns_a_personal_namespace(stack) -> None:
    reg, _ = stack
    mine = _ok(call(reg.url, "GET", "/api/namespaces/otto", api_token(reg, "otto")))
    assert mine["personal"] is True and mine["public"] is False and mine["role"] == "owner"
    assert [m["username"] for m in mine["members"]] == ["otto"]
    listed = _ok(call(reg.url, "GET", "/api/namespaces", api_token(reg, "otto")))
    assert [n["name"] for n in listed] == ["otto"]
    # nobody else sees it (404 as for a namespace that does not exist)
    refused(
        call(reg.url, "GET", "/api/namespaces/otto", api_token(reg, "rita")),
        404,
        "NAMESPACE_UNKNOWN",
    )


@pytest.fixture(scope="module")
def acme(stack) -> str:
    """The namespace acme, created by olive, with a member of every other role."""
    reg, _ = stack
    olive = api_token(reg, "olive")
    created = _post(reg.url, "/api/namespaces", olive, {"name": "acme"})
    assert created["role"] == "owner" and created["public"] is False
    for user, role in ROLES.items():
        if user != "olive":
            body = {"username": user, "role": role}
            _post(reg.url, "/api/namespaces/acme/members", olive, body)
    return "acme"


def test_create_namespace_and_manage_members(stack, acme) -> None:
    reg, url = stack
    olive = api_token(reg, "olive")
    shown = _ok(call(reg.url, "GET", "/api/namespaces/acme", api_token(reg, "rita")))
    assert {m["username"]: m["role"] for m in shown["members"]} == ROLES
    assert shown["role"] == "reader"
    # taken names: a namespace, a user
    refused(
        call(reg.url, "POST", "/api/namespaces", olive, json={"name": "acme"}),
        409,
        "NAMESPACE_EXISTS",
    )
    refused(
        call(reg.url, "POST", "/api/namespaces", olive, json={"name": "otto"}),
        409,
        "NAMESPACE_EXISTS",
    )
    for bad in [
        {"name": "Acme"},
        {"name": ""},
        {"name": "a/b"},
        {"name": 7},
        {},
        {"name": "ok1", "public": "yes"},
        {"name": "ok2", "extra": 1},
    ]:
        refused(call(reg.url, "POST", "/api/namespaces", olive, json=bad), 400, "INVALID_INPUT")
    # members may not manage; an outsider does not even see it
    mark = api_token(reg, "mark")
    refused(
        call(reg.url, "PATCH", "/api/namespaces/acme", mark, json={"public": True}), 403, "DENIED"
    )
    refused(
        call(
            reg.url,
            "POST",
            "/api/namespaces/acme/members",
            mark,
            json={"username": "otto", "role": "owner"},
        ),
        403,
        "DENIED",
    )
    refused(
        call(reg.url, "GET", "/api/namespaces/acme", api_token(reg, "otto")),
        404,
        "NAMESPACE_UNKNOWN",
    )
    # bad member changes
    path = "/api/namespaces/acme/members"
    refused(
        call(reg.url, "POST", path, olive, json={"username": "nobody", "role": "reader"}),
        404,
        "USER_UNKNOWN",
    )
    refused(
        call(reg.url, "POST", path, olive, json={"username": "otto", "role": "boss"}),
        400,
        "INVALID_INPUT",
    )
    refused(
        call(reg.url, "PATCH", f"{path}/otto", olive, json={"role": "reader"}),
        404,
        "MEMBER_UNKNOWN",
    )
    refused(call(reg.url, "DELETE", f"{path}/olive", olive), 409, "INVALID_INPUT")
    refused(
        call(reg.url, "PATCH", f"{path}/olive", olive, json={"role": "reader"}),
        409,
        "INVALID_INPUT",
    )
    # a change and a removal, then back
    _ok(call(reg.url, "PATCH", f"{path}/rita", olive, json={"role": "developer"}))
    _ok(call(reg.url, "DELETE", f"{path}/rita", olive))
    refused(
        call(reg.url, "GET", "/api/namespaces/acme", api_token(reg, "rita")),
        404,
        "NAMESPACE_UNKNOWN",
    )
    _post(reg.url, path, olive, {"username": "rita", "role": "reader"})
    text = history_text(url)
    for kind in (
        "namespace.created",
        "namespace.member_added",
        "namespace.member_changed",
        "namespace.member_removed",
    ):
        assert kind in text


def test_delete_an_empty_namespace(stack) -> None:
    reg, url = stack
    olive, otto = api_token(reg, "olive"), api_token(reg, "otto")
    _post(reg.url, "/api/namespaces", olive, {"name": "gone"})
    _post(reg.url, "/api/namespaces/gone/members", olive, {"username": "mark", "role": "developer"})
    robot = _post(
        reg.url, "/api/namespaces/gone/robots", olive, {"name": "ci", "actions": ["pull"]}
    )
    with _admin(reg) as admin:
        push_image(admin, "gone/app", "v1", layers=[b"gone"])
    refused(call(reg.url, "DELETE", "/api/namespaces/gone", olive), 409, "INVALID_INPUT")
    admin_api = token_of(reg.url, *ADMIN)
    _ok(call(reg.url, "DELETE", "/api/repositories/gone/app", admin_api))
    refused(call(reg.url, "DELETE", "/api/namespaces/gone", api_token(reg, "mark")), 403, "DENIED")
    refused(call(reg.url, "DELETE", "/api/namespaces/otto", otto), 409, "INVALID_INPUT")
    deleted = _ok(call(reg.url, "DELETE", "/api/namespaces/gone", olive))
    assert deleted == {"name": "gone", "deleted": True, "robots_revoked": 1}
    refused(call(reg.url, "GET", "/api/namespaces/gone", olive), 404, "NAMESPACE_UNKNOWN")
    refused(call(reg.url, "DELETE", "/api/namespaces/gone", olive), 404, "NAMESPACE_UNKNOWN")
    assert (
        httpx.get(f"{reg.url}/token", auth=(robot["username"], robot["secret"])).status_code == 401
    )
    # the name may be taken again: a new namespace, nothing of the old one
    again = _post(reg.url, "/api/namespaces", otto, {"name": "gone"})
    assert [m["username"] for m in again["members"]] == ["otto"]
    with reg.client(("mark", PASSWORDS["mark"])) as mark:
        assert mark.post("/v2/gone/app/blobs/uploads/").status_code == 401
    assert "namespace.deleted" in history_text(url)


def test_a_push_into_a_deleted_namespace_creates_it_again(stack) -> None:
    """A repository of a deleted namespace that comes back (an admin pushes to it again)
    brings a namespace with it, as a first push does: no repository without its namespace."""
    reg, url = stack
    olive = api_token(reg, "olive")
    admin_api = token_of(reg.url, *ADMIN)
    _post(reg.url, "/api/namespaces", olive, {"name": "phoenix"})
    with _admin(reg) as admin:
        push_image(admin, "phoenix/app", "v1", layers=[b"phoenix one"])
    _ok(call(reg.url, "DELETE", "/api/repositories/phoenix/app", admin_api))
    _ok(call(reg.url, "DELETE", "/api/namespaces/phoenix", olive))
    refused(call(reg.url, "GET", "/api/namespaces/phoenix", admin_api), 404, "NAMESPACE_UNKNOWN")
    with _admin(reg) as admin:
        push_image(admin, "phoenix/app", "v2", layers=[b"phoenix two"])
    shown = _ok(call(reg.url, "GET", "/api/namespaces/phoenix", admin_api))
    assert shown["name"] == "phoenix" and shown["members"] == []
    with psycopg.connect(url) as conn:
        orphans = conn.execute(
            "SELECT r.name FROM repositories r LEFT JOIN namespaces n ON n.name = r.namespace"
            " WHERE n.name IS NULL"
        ).fetchall()
    assert orphans == []


def test_only_admins_create_the_root_namespace(stack) -> None:
    reg, _ = stack
    olive = api_token(reg, "olive")
    answer = call(reg.url, "POST", "/api/namespaces", olive, json={"name": "library"})
    refused(answer, 403, "DENIED")


def test_api_needs_a_session(stack) -> None:
    reg, _ = stack
    refused(call(reg.url, "GET", "/api/namespaces"), 401, "UNAUTHORIZED")
    refused(call(reg.url, "POST", "/api/tokens", json={}), 401, "UNAUTHORIZED")


# -- the matrix --------------------------------------------------------------------------------
def _admin(reg: RegistryProcess) -> httpx.Client:
    return reg.client(ADMIN)


@pytest.fixture(scope="module")
def world(stack, acme) -> dict[str, Any]:
    """acme (private, members by role), pub (public), vault (private, nobody's): each with
    an image, plus a PAT of rita (pull) and a robot of acme (pull, push)."""
    reg, _ = stack
    admin_api = token_of(reg.url, *ADMIN)
    for name, public in (("pub", True), ("vault", False)):
        _ok(
            call(
                reg.url, "POST", "/api/namespaces", admin_api, json={"name": name, "public": public}
            ),
            201,
        )
    with _admin(reg) as admin:
        push_image(admin, "acme/base", "v1", layers=[b"acme layer"])
        push_image(admin, "pub/tool", "v1", layers=[b"pub layer"])
        push_image(admin, "vault/secret", "v1", layers=[b"vault layer"])
    rita = api_token(reg, "rita")
    pat = _post(
        reg.url,
        "/api/tokens",
        rita,
        {"name": "ci-pull", "scopes": [{"namespace": "acme", "actions": ["pull"]}]},
    )
    olive = api_token(reg, "olive")
    robot = _post(
        reg.url,
        "/api/namespaces/acme/robots",
        olive,
        {"name": "ci", "actions": ["pull", "push"], "expires_in_days": 7},
    )
    return {"pat": pat, "robot": robot}


def _credentials(world: dict[str, Any], who: str) -> tuple[str, str] | None:
    if who == "admin":
        return ADMIN
    if who == "pat":
        return ("rita", world["pat"]["secret"])
    if who == "robot":
        return (world["robot"]["username"], world["robot"]["secret"])
    if who == "anonymous":
        return None
    return (who, PASSWORDS[who])


def _client(reg: RegistryProcess, creds: tuple[str, str] | None) -> httpx.Client:
    if creds is None:
        return httpx.Client(base_url=reg.url, timeout=30)
    return reg.client(creds)


# caller -> (pull, push, mount from pub, mount from vault, delete manifest, delete tag,
#            list tags, sees acme in the catalog)
Y, N = True, False
MATRIX = {
    "admin": (Y, Y, "mounted", "mounted", Y, Y, Y, Y),
    "olive": (Y, Y, "mounted", "upload", Y, Y, Y, Y),
    "mark": (Y, Y, "mounted", "upload", Y, Y, Y, Y),
    "dora": (Y, Y, "mounted", "upload", N, N, Y, Y),
    "rita": (Y, N, N, N, N, N, Y, Y),
    "otto": (N, N, N, N, N, N, N, N),
    "anonymous": (N, N, N, N, N, N, N, N),
    "pat": (Y, N, N, N, N, N, Y, Y),
    "robot": (Y, Y, "upload", "upload", N, N, Y, Y),
}


@pytest.mark.parametrize("who", list(MATRIX))
def test_role_matrix(stack, world, who) -> None:
    reg, _ = stack
    pull, push, from_pub, from_vault, del_manifest, del_tag, list_tags, catalog = MATRIX[who]
    target = f"acme/{who}"
    layer, tag_layer = f"{who} layer".encode(), f"{who} tagged".encode()
    with _admin(reg) as admin:  # what the caller will delete, pushed by an admin
        doomed = push_image(admin, target, "doomed", layers=[layer])
        push_image(admin, target, "untag", layers=[tag_layer])
        push_image(admin, target, "api", layers=[f"{who} api".encode()])
    creds = _credentials(world, who)
    with _client(reg, creds) as client:

        def status(answer: httpx.Response, allowed: bool, good: int) -> None:
            expected = good if allowed else 401
            assert answer.status_code == expected, (who, answer.request.url, answer.text)

        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        status(client.get("/v2/acme/base/manifests/v1", headers=accept), pull, 200)
        status(client.get("/v2/acme/base/tags/list"), list_tags, 200)
        # push: a blob upload (the first step of every push)
        answer = client.post(
            f"/v2/{target}/blobs/uploads/",
            params={"digest": digest_of(who.encode())},
            content=who.encode(),
        )
        status(answer, push, 201)
        for source, expected in (("pub/tool", from_pub), ("vault/secret", from_vault)):
            blob = f"{source.split('/')[0]} layer".encode()
            answer = client.post(
                f"/v2/{target}/blobs/uploads/",
                params={"mount": digest_of(blob), "from": source},
            )
            if expected is N:
                assert answer.status_code == 401, (who, source, answer.text)
            else:  # 201: mounted; 202: may not read the source, an ordinary upload instead
                assert answer.status_code == (201 if expected == "mounted" else 202), (
                    who,
                    source,
                    answer.text,
                )
        status(client.delete(f"/v2/{target}/manifests/untag"), del_tag, 202)
        status(client.delete(f"/v2/{target}/manifests/{doomed}"), del_manifest, 202)
        _api_images(reg, who, creds, target, pull, del_tag)
        answer = client.get("/v2/_catalog")
        if who == "anonymous":
            assert answer.status_code == 401
        else:
            assert answer.status_code == 200, answer.text
            names = answer.json()["repositories"]
            assert ("acme/base" in names) is catalog, (who, names)
            assert ("vault/secret" in names) is (who == "admin")
            assert ("pub/tool" in names) is (who not in ("pat", "robot"))


def _api_images(
    reg: RegistryProcess,
    who: str,
    creds: tuple[str, str] | None,
    target: str,
    pull: bool,
    delete: bool,
) -> None:
    """/api/images list and delete: only users with a password open an /api session."""
    session = None
    if creds is not None and who not in ("pat", "robot"):
        session = token_of(reg.url, *creds)
    listed = call(reg.url, "GET", "/api/images", session, params={"namespace": "acme"})
    deleted = call(reg.url, "DELETE", f"/api/images/{target}/api", session)
    if session is None:  # no session: tokens and robots are for /v2 only
        refused(listed, 401, "UNAUTHORIZED")
        refused(deleted, 401, "UNAUTHORIZED")
        return
    assert listed.status_code == 200, listed.text
    repos = {row["repository"] for row in listed.json()["data"]["items"]}
    assert ("acme/base" in repos) is pull, (who, repos)
    if delete:
        assert deleted.status_code == 200, (who, deleted.text)
    elif pull:
        refused(deleted, 403, "DENIED")
    else:  # what the caller may not see does not exist for them
        assert deleted.status_code == 404, (who, deleted.text)


def test_a_push_by_an_admin_creates_the_namespace(stack) -> None:
    reg, url = stack
    with _admin(reg) as admin:
        push_image(admin, "neworg/app", "v1", layers=[b"new org"])
        push_image(admin, "myapp", "latest", layers=[b"root ns"])
    admin_api = token_of(reg.url, *ADMIN)
    for name in ("neworg", "library"):
        found = _ok(call(reg.url, "GET", f"/api/namespaces/{name}", admin_api))
        assert found["members"] == [] and found["public"] is False
    # an ordinary user may not create one by pushing
    with reg.client(("otto", PASSWORDS["otto"])) as otto:
        answer = otto.post("/v2/otherorg/app/blobs/uploads/")
        assert answer.status_code == 401
        push_image(otto, "otto/app", "v1", layers=[b"otto's own"])  # their own namespace


def test_public_namespace_lets_every_signed_in_user_pull(stack, world) -> None:
    reg, _ = stack
    with reg.client(("otto", PASSWORDS["otto"])) as otto:
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        assert otto.get("/v2/pub/tool/manifests/v1", headers=accept).status_code == 200
        assert otto.post("/v2/pub/tool/blobs/uploads/").status_code == 401
    # turning acme public lets otto pull there too, turning it back ends it
    olive = api_token(reg, "olive")
    _ok(call(reg.url, "PATCH", "/api/namespaces/acme", olive, json={"public": True}))
    try:
        with reg.client(("otto", PASSWORDS["otto"])) as otto:
            assert otto.get("/v2/acme/base/tags/list").status_code == 200
    finally:
        _ok(call(reg.url, "PATCH", "/api/namespaces/acme", olive, json={"public": False}))
    with reg.client(("otto", PASSWORDS["otto"])) as otto:
        assert otto.get("/v2/acme/base/tags/list").status_code == 401


def test_anonymous_pull_only_when_the_operator_turns_it_on(
    pg_admin_url: str, nats_url: str, tmp_path
) -> None:
    url = create_database(pg_admin_url)
    reg = RegistryProcess(url, nats_url, tmp_path / "data", CYP_ANONYMOUS_PULL="true")
    try:
        reg.start()
        admin_api = token_of(reg.url, *ADMIN)
        for name, public in (("pub", True), ("priv", False)):
            _post(reg.url, "/api/namespaces", admin_api, {"name": name, "public": public})
        with reg.client(ADMIN) as admin:
            push_image(admin, "pub/app", "v1")
            push_image(admin, "priv/app", "v1")
        with httpx.Client(base_url=reg.url, timeout=30) as anonymous:
            # the docker flow: ping, challenge, anonymous token, pull
            assert anonymous.get("/v2/").status_code == 401
            for repo, ok in (("pub/app", True), ("priv/app", False)):
                grant = anonymous.get(
                    "/token",
                    params={"service": "cyp-registry", "scope": f"repository:{repo}:pull,push"},
                )
                bearer = {"Authorization": f"Bearer {grant.json()['token']}"}
                assert anonymous.get("/v2/", headers=bearer).status_code == 200
                pulled = anonymous.get(f"/v2/{repo}/tags/list", headers=bearer)
                assert pulled.status_code == (200 if ok else 401), pulled.text
                pushed = anonymous.post(f"/v2/{repo}/blobs/uploads/", headers=bearer)
                assert pushed.status_code == 401
    finally:
        reg.stop()
        delete_stream(nats_url, reg.stream)
        drop_database(pg_admin_url, url)


# -- personal access tokens and robots ---------------------------------------------------------
def test_personal_access_token_lifecycle(stack, world) -> None:
    reg, url = stack
    dora = api_token(reg, "dora")
    issued = _ok(
        call(
            reg.url,
            "POST",
            "/api/tokens",
            dora,
            json={
                "name": "laptop",
                "description": "push from my laptop",
                "expires_in_days": 30,
                "scopes": [{"namespace": "acme", "actions": ["pull", "push"]}],
            },
        ),
        201,
    )
    secret = issued["secret"]
    assert secret.startswith("cyp_pat_") and issued["id"] in secret
    with reg.client(("dora", secret)) as client:
        push_image(client, "acme/dora-pat", "v1", layers=[b"dora by token"])
        # limited to acme: not her personal namespace
        assert client.post("/v2/dora/app/blobs/uploads/").status_code == 401
    # never shown again, nor in the history
    listed = _ok(call(reg.url, "GET", "/api/tokens", dora))
    assert [t["name"] for t in listed] == ["laptop"] and "secret" not in listed[0]
    assert secret not in history_text(url) and secret.split("_")[-1] not in history_text(url)
    # the wrong user, a wrong secret: refused like a wrong password
    for user, password in (("rita", secret), ("dora", secret + "x"), ("dora", "cyp_pat_x")):
        answer = httpx.get(f"{reg.url}/token", auth=(user, password))
        assert answer.status_code == 401, answer.text
    # an /api session cannot be opened with it
    assert (
        httpx.post(
            f"{reg.url}/api/auth/login", json={"username": "dora", "password": secret}
        ).status_code
        == 401
    )
    # other users cannot revoke it; its user can
    refused(
        call(reg.url, "DELETE", f"/api/tokens/{issued['id']}", api_token(reg, "rita")),
        404,
        "TOKEN_UNKNOWN",
    )
    revoked = _ok(call(reg.url, "DELETE", f"/api/tokens/{issued['id']}", dora))
    assert revoked["revoked"] is True
    assert httpx.get(f"{reg.url}/token", auth=("dora", secret)).status_code == 401
    assert "token revoked" in history_text(url)
    # the audit log names the token each sign-in used (its id, never the secret)
    logins = [
        e for e in history(url, "login.succeeded") if e["details"].get("credential") == issued["id"]
    ]
    assert logins and all(e["actor"] == "dora" for e in logins)
    for bad in [
        {},
        {"name": "x"},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": [{"namespace": "acme", "actions": ["fly"]}]},
        {"name": "x", "scopes": [{"namespace": "*", "actions": ["pull"]}], "expires_in_days": 0},
        {"name": "Bad Name", "scopes": [{"namespace": "*", "actions": ["pull"]}]},
    ]:
        refused(call(reg.url, "POST", "/api/tokens", dora, json=bad), 400, "INVALID_INPUT")


def test_an_expired_token_signs_in_no_more(stack) -> None:
    reg, url = stack
    token_id, secret = new_personal_secret()
    app = Registry(env=eventsourcing_env(url))
    try:
        app.issue_access_token(
            token_id,
            PERSONAL,
            "otto",
            "",
            "old",
            "",
            {"*": ["pull"]},
            int(time.time()) - 1,
            secret,
            SYSTEM,
        )
    finally:
        app.close()

    assert wait_until(
        lambda: httpx.get(f"{reg.url}/token", auth=("otto", secret)).status_code == 401
    )
    assert "token expired" in history_text(url)


def test_a_disabled_user_s_tokens_sign_in_no_more(stack) -> None:
    reg, _ = stack
    otto = api_token(reg, "otto")
    issued = _post(
        reg.url,
        "/api/tokens",
        otto,
        {"name": "t", "scopes": [{"namespace": "*", "actions": ["pull"]}]},
    )
    assert httpx.get(f"{reg.url}/token", auth=("otto", issued["secret"])).status_code == 200
    admin = token_of(reg.url, *ADMIN)
    _ok(call(reg.url, "PATCH", "/api/users/otto", admin, json={"disabled": True}))
    try:
        assert httpx.get(f"{reg.url}/token", auth=("otto", issued["secret"])).status_code == 401
    finally:
        _ok(call(reg.url, "PATCH", "/api/users/otto", admin, json={"disabled": False}))


def test_robots(stack, world) -> None:
    reg, url = stack
    olive = api_token(reg, "olive")
    robot = world["robot"]
    assert robot["username"] == "robot$acme+ci" and robot["secret"].startswith("cyp_rbt_")
    listed = _ok(call(reg.url, "GET", "/api/namespaces/acme/robots", olive))
    assert [r["username"] for r in listed] == ["robot$acme+ci"] and "secret" not in listed[0]
    assert listed[0]["actions"] == ["pull", "push"]
    # members who are not owners may not create or list robots
    mark = api_token(reg, "mark")
    refused(call(reg.url, "GET", "/api/namespaces/acme/robots", mark), 403, "DENIED")
    refused(
        call(
            reg.url,
            "POST",
            "/api/namespaces/acme/robots",
            mark,
            json={"name": "x", "actions": ["pull"]},
        ),
        403,
        "DENIED",
    )
    refused(
        call(
            reg.url,
            "POST",
            "/api/namespaces/acme/robots",
            olive,
            json={"name": "ci", "actions": ["pull"]},
        ),
        409,
        "TOKEN_EXISTS",
    )
    # a second robot, revoked: it signs in no more
    other = _post(
        reg.url, "/api/namespaces/acme/robots", olive, {"name": "deploy", "actions": ["pull"]}
    )
    creds = (other["username"], other["secret"])
    assert httpx.get(f"{reg.url}/token", auth=creds).status_code == 200
    _ok(call(reg.url, "DELETE", "/api/namespaces/acme/robots/deploy", olive))
    assert httpx.get(f"{reg.url}/token", auth=creds).status_code == 401
    for nobody in ("nobody", "%00", "robot$acme+%00", "robot$other+ci"):  # never a 500
        refused(
            call(reg.url, "DELETE", f"/api/namespaces/acme/robots/{nobody}", olive),
            404,
            "TOKEN_UNKNOWN",
        )
    refused(call(reg.url, "DELETE", "/api/tokens/%00", olive), 404, "TOKEN_UNKNOWN")
    assert other["secret"] not in history_text(url)
    # a robot's name with a wrong secret, a made-up robot
    for creds in (("robot$acme+ci", "nope"), ("robot$acme+ghost", "cyp_rbt_x"), ("robot$", "x")):
        assert httpx.get(f"{reg.url}/token", auth=creds).status_code == 401


def test_refresh_keeps_a_token_s_limits(stack, world) -> None:
    """`docker login` with a PAT keeps a refresh token: refreshing gives the PAT's limits,
    not the user's whole rights."""
    reg, _ = stack
    secret = world["pat"]["secret"]
    form = {
        "grant_type": "password",
        "username": "rita",
        "password": secret,
        "service": "cyp-registry",
        "access_type": "offline",
        "client_id": "test",
        "scope": "repository:rita/app:pull",
    }
    first = httpx.post(f"{reg.url}/token", data=form)
    assert first.status_code == 200, first.text
    assert first.json()["scope"] == ""  # the PAT is limited to acme
    refreshed = httpx.post(
        f"{reg.url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "service": "cyp-registry",
            "client_id": "test",
            "scope": "repository:rita/app:pull repository:acme/base:pull,push",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["scope"] == "repository:acme/base:pull"


def test_record_of_who_did_what(stack, world) -> None:
    reg, url = stack
    text = history_text(url)
    assert "access_token.issued" in text and "access_token.revoked" in text
    assert '"token_type": "robot"' in text
    assert "secret_hash" not in text


# -- authorisation gaps ------------------------------------------------------------------------
def _token_answer(reg: RegistryProcess, creds: tuple[str, str], scope: str) -> httpx.Response:
    return httpx.get(
        f"{reg.url}/token", params={"service": "cyp-registry", "scope": scope}, auth=creds
    )


def test_a_disabled_user_s_robots_push_and_delete_no_more(stack) -> None:
    """A robot of a user's personal namespace goes quiet with its user: no token for a push
    or a delete (nor by a refresh token) while the user is disabled."""
    reg, url = stack
    admin = token_of(reg.url, *ADMIN)
    body = {"username": "pia", "password": "pia-password-1", "role": "user"}
    _post(reg.url, "/api/users", admin, body)
    pia = token_of(reg.url, "pia", "pia-password-1")
    robot = _post(
        reg.url,
        "/api/namespaces/pia/robots",
        pia,
        {"name": "ci", "actions": ["pull", "push", "delete"]},
    )
    creds = (robot["username"], robot["secret"])
    with reg.client(creds) as ci:
        kept = push_image(ci, "pia/app", "v1", layers=[b"pia layer"])
        doomed = push_image(ci, "pia/app", "v2", layers=[b"pia doomed"])
        assert ci.delete(f"/v2/pia/app/manifests/{doomed}").status_code == 202
    offline = {
        "grant_type": "password",
        "username": creds[0],
        "password": creds[1],
        "service": "cyp-registry",
        "client_id": "test",
        "access_type": "offline",
    }
    refresh = httpx.post(f"{reg.url}/token", data=offline).json()["refresh_token"]

    _ok(call(reg.url, "PATCH", "/api/users/pia", admin, json={"disabled": True}))
    for scope in ("repository:pia/app:push,pull", "repository:pia/app:delete"):
        answer = _token_answer(reg, creds, scope)
        assert answer.status_code == 401, answer.text
        assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert "token" not in answer.json()
    refreshed = httpx.post(
        f"{reg.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "service": "cyp-registry"},
    )
    assert refreshed.status_code == 401 and refreshed.json()["errors"][0]["code"] == "UNAUTHORIZED"
    with pytest.raises(httpx.HTTPStatusError), reg.client(creds) as ci:
        push_image(ci, "pia/app", "v3", layers=[b"pia after"])
    with pytest.raises(httpx.HTTPStatusError), reg.client(creds) as ci:
        ci.delete(f"/v2/pia/app/manifests/{kept}")
    with reg.client(ADMIN) as admin_v2:  # nothing changed
        assert admin_v2.get(f"/v2/pia/app/manifests/{kept}").status_code == 200
        assert admin_v2.get("/v2/pia/app/manifests/v3").status_code == 404
    assert any(
        e["details"]["username"] == creds[0] and e["details"]["reason"] == "user disabled"
        for e in history(url, "login.failed")
    )
    # enabled again, the robot works again (disabling suspends, it does not revoke)
    _ok(call(reg.url, "PATCH", "/api/users/pia", admin, json={"disabled": False}))
    assert _token_answer(reg, creds, "repository:pia/app:push,pull").status_code == 200


def _history(reg: RegistryProcess, token: str, **params: str) -> list[dict[str, Any]]:
    return _ok(call(reg.url, "GET", "/api/history", token, params={"limit": 200, **params}))[
        "items"
    ]


def test_a_re_created_namespace_shows_nothing_of_the_deleted_one(stack) -> None:
    reg, _ = stack
    olive, otto = api_token(reg, "olive"), api_token(reg, "otto")
    admin_api = token_of(reg.url, *ADMIN)
    _post(reg.url, "/api/namespaces", olive, {"name": "reborn"})
    _post(reg.url, "/api/namespaces/reborn/members", olive, {"username": "rita", "role": "reader"})
    old = _post(
        reg.url, "/api/namespaces/reborn/robots", olive, {"name": "ci", "actions": ["pull"]}
    )
    with _admin(reg) as admin:
        push_image(admin, "reborn/app", "v1", layers=[b"reborn layer"])
    _ok(call(reg.url, "DELETE", "/api/repositories/reborn/app", admin_api))
    _ok(call(reg.url, "DELETE", "/api/namespaces/reborn", olive))
    old_events = {e["position"] for e in _history(reg, admin_api, namespace="reborn")}
    assert len(old_events) >= 6  # created, member, robot, push…, deleted

    # otto takes the name: a new namespace with rita as a reader again
    _post(reg.url, "/api/namespaces", otto, {"name": "reborn"})
    _post(reg.url, "/api/namespaces/reborn/members", otto, {"username": "rita", "role": "reader"})
    assert _ok(call(reg.url, "GET", "/api/namespaces/reborn/robots", otto)) == []
    refused(call(reg.url, "DELETE", "/api/namespaces/reborn/robots/ci", otto), 404, "TOKEN_UNKNOWN")
    assert httpx.get(f"{reg.url}/token", auth=(old["username"], old["secret"])).status_code == 401
    for who in (otto, admin_api):  # the namespace's history: the new one's only
        shown = _history(reg, who, namespace="reborn")
        assert [(e["type"], e["actor"]) for e in reversed(shown)] == [
            ("namespace.created", "otto"),
            ("namespace.member_added", "otto"),
        ]
    # what a member sees of it
    rita = _history(reg, api_token(reg, "rita"))
    assert {e["position"] for e in rita} & old_events == set()
    assert ("namespace.member_added", "otto") in {(e["type"], e["actor"]) for e in rita}
    # the new one's robots, one of them with the old one's name: new robots, new secrets
    _post(reg.url, "/api/namespaces/reborn/robots", otto, {"name": "deploy", "actions": ["pull"]})
    again = _post(
        reg.url, "/api/namespaces/reborn/robots", otto, {"name": "ci", "actions": ["pull", "push"]}
    )
    assert again["username"] == old["username"] and again["secret"] != old["secret"]
    listed = _ok(call(reg.url, "GET", "/api/namespaces/reborn/robots", otto))
    assert [(r["username"], r["created_by"]) for r in listed] == [
        ("robot$reborn+ci", "otto"),
        ("robot$reborn+deploy", "otto"),
    ]
    assert listed[0]["actions"] == ["pull", "push"] and listed[0]["revoked_at"] is None
    assert httpx.get(f"{reg.url}/token", auth=(old["username"], old["secret"])).status_code == 401
    assert (
        httpx.get(f"{reg.url}/token", auth=(again["username"], again["secret"])).status_code == 200
    )
    refused(  # while it lives, the name is taken
        call(
            reg.url,
            "POST",
            "/api/namespaces/reborn/robots",
            otto,
            json={"name": "ci", "actions": ["pull"]},
        ),
        409,
        "TOKEN_EXISTS",
    )
