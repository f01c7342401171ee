"""/api/users on the real stack: system admins create, list, change and (soft) delete users;
other users get 403 DENIED; domain errors map to the envelope; passwords and their hashes
never appear in an answer or in the history."""

from __future__ import annotations

import uuid

import pytest

from tests.apiclient import call, history, history_text, login, refused, token_of
from tests.auth import ADMIN

USERS = "/api/users"
PUBLIC_FIELDS = {"name", "role", "disabled", "created_at", "updated_at"}


def _name(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def admin_token(module_registry) -> str:
    return token_of(module_registry.url, *ADMIN)


def _create(url: str, token: str, name: str, password: str, role: str = "user"):
    return call(
        url, "POST", USERS, token, json={"username": name, "password": password, "role": role}
    )


def _no_secrets(text: str, *passwords: str) -> None:
    assert "$argon2" not in text and "password_hash" not in text
    for password in passwords:
        assert password not in text


def test_admin_creates_lists_and_shows_users(module_registry, admin_token) -> None:
    url = module_registry.url
    name, password = _name(), "s3cret-" + uuid.uuid4().hex
    answer = _create(url, admin_token, name, password)
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    assert set(data) == PUBLIC_FIELDS
    assert (data["name"], data["role"], data["disabled"]) == (name, "user", False)
    _no_secrets(answer.text, password)
    listing = call(url, "GET", USERS, admin_token)
    assert listing.status_code == 200
    rows = {row["name"]: row for row in listing.json()["data"]}
    assert rows["admin"]["role"] == "admin" and rows[name]["role"] == "user"
    assert all(set(row) == PUBLIC_FIELDS for row in rows.values())
    _no_secrets(listing.text, password)
    one = call(url, "GET", f"{USERS}/{name}", admin_token)
    assert one.json() == {"success": True, "data": rows[name]}
    # the new user can sign in; the history names the admin who created them
    assert token_of(url, name, password)
    database = module_registry.env["CYP_DATABASE_URL"]
    registered = [
        e for e in history(database, "user.registered") if e["details"]["username"] == name
    ]
    assert registered and registered[0]["actor"] == "admin"
    _no_secrets(history_text(database), password)


def test_default_role_is_user_and_admins_can_be_made(module_registry, admin_token) -> None:
    url = module_registry.url
    plain = call(
        url, "POST", USERS, admin_token, json={"username": _name(), "password": "long-enough"}
    )
    assert plain.status_code == 201 and plain.json()["data"]["role"] == "user"
    boss, password = _name("boss"), "boss-password"
    assert _create(url, admin_token, boss, password, "admin").json()["data"]["role"] == "admin"
    assert call(url, "GET", USERS, token_of(url, boss, password)).status_code == 200


@pytest.mark.parametrize(
    "body,field",
    [
        ({"username": "Bad Name", "password": "long-enough"}, "username"),
        ({"username": "library", "password": "long-enough"}, "username"),
        # the actors events name when no user acted: taken, they would see those events
        ({"username": "anonymous", "password": "long-enough"}, "username"),
        ({"username": "system", "password": "long-enough"}, "username"),
        ({"username": "cli", "password": "long-enough"}, "username"),
        ({"username": "ok-name", "password": "short"}, "password"),
        ({"username": "ok-name", "password": "long-enough", "role": "root"}, "role"),
        ({"username": "ok-name", "password": 12345678}, "password"),
        ({"password": "long-enough"}, "username"),
        ({"username": "ok-name"}, "password"),
    ],
)
def test_invalid_users_are_400(module_registry, admin_token, body, field) -> None:
    answer = call(module_registry.url, "POST", USERS, admin_token, json=body)
    refused(answer, 400, "INVALID_INPUT")


def test_duplicate_user_is_409(module_registry, admin_token) -> None:
    url = module_registry.url
    name = _name()
    assert _create(url, admin_token, name, "first-password").status_code == 201
    refused(_create(url, admin_token, name, "other-password"), 409, "USER_EXISTS")
    refused(_create(url, admin_token, "admin", "other-password"), 409, "USER_EXISTS")
    assert token_of(url, name, "first-password")  # unchanged


def test_patch_changes_password_role_and_disabled(module_registry, admin_token) -> None:
    url = module_registry.url
    name, old, new = _name(), "old-password", "new-password-" + uuid.uuid4().hex
    assert _create(url, admin_token, name, old).status_code == 201
    answer = call(url, "PATCH", f"{USERS}/{name}", admin_token, json={"password": new})
    assert answer.status_code == 200, answer.text
    _no_secrets(answer.text, old, new)
    refused(login(url, name, old), 401, "UNAUTHORIZED")
    user_token = token_of(url, name, new)
    refused(call(url, "GET", USERS, user_token), 403, "DENIED")
    promoted = call(url, "PATCH", f"{USERS}/{name}", admin_token, json={"role": "admin"})
    assert promoted.json()["data"]["role"] == "admin"
    # the role is read per request: the same token is an admin's now
    assert call(url, "GET", USERS, user_token).status_code == 200
    both = call(
        url, "PATCH", f"{USERS}/{name}", admin_token, json={"role": "user", "disabled": True}
    )
    assert both.status_code == 200
    assert (both.json()["data"]["role"], both.json()["data"]["disabled"]) == ("user", True)
    refused(call(url, "GET", USERS, user_token), 401, "UNAUTHORIZED")
    refused(login(url, name, new), 401, "UNAUTHORIZED")
    back = call(url, "PATCH", f"{USERS}/{name}", admin_token, json={"disabled": False})
    assert back.json()["data"]["disabled"] is False
    assert token_of(url, name, new)
    _no_secrets(history_text(module_registry.env["CYP_DATABASE_URL"]), old, new)


@pytest.mark.parametrize(
    "body",
    [{}, {"disabled": "yes"}, {"role": "root"}, {"password": "short"}, {"name": "x"}, [], "x"],
)
def test_bad_patches_are_400_and_change_nothing(module_registry, admin_token, body) -> None:
    url = module_registry.url
    name = _name()
    assert _create(url, admin_token, name, "a-password").status_code == 201
    before = call(url, "GET", f"{USERS}/{name}", admin_token).json()
    refused(call(url, "PATCH", f"{USERS}/{name}", admin_token, json=body), 400, "INVALID_INPUT")
    assert call(url, "GET", f"{USERS}/{name}", admin_token).json() == before


def test_unknown_users_are_404(module_registry, admin_token) -> None:
    url = module_registry.url
    for method, body in [("GET", None), ("PATCH", {"role": "admin"}), ("DELETE", None)]:
        for name in ("nobody-known", "Not_A-Name"):
            answer = call(url, method, f"{USERS}/{name}", admin_token, json=body)
            refused(answer, 404, "USER_UNKNOWN")


def test_delete_disables_the_user(module_registry, admin_token) -> None:
    url = module_registry.url
    name, password = _name(), "a-password"
    assert _create(url, admin_token, name, password).status_code == 201
    user_token = token_of(url, name, password)
    answer = call(url, "DELETE", f"{USERS}/{name}", admin_token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["disabled"] is True  # a soft delete
    refused(call(url, "POST", "/api/auth/logout", user_token), 401, "UNAUTHORIZED")
    refused(login(url, name, password), 401, "UNAUTHORIZED")
    rows = {row["name"]: row for row in call(url, "GET", USERS, admin_token).json()["data"]}
    assert rows[name]["disabled"] is True
    # deleting again is harmless; the name stays taken
    assert call(url, "DELETE", f"{USERS}/{name}", admin_token).status_code == 200
    refused(_create(url, admin_token, name, password), 409, "USER_EXISTS")
    database = module_registry.env["CYP_DATABASE_URL"]
    disabled = [e for e in history(database, "user.disabled") if e["details"]["username"] == name]
    assert len(disabled) == 1 and disabled[0]["actor"] == "admin"
    failed = [e for e in history(database, "login.failed") if e["details"]["username"] == name]
    assert failed and failed[-1]["details"]["reason"] == "user disabled"


def test_users_are_for_admins_only(module_registry, admin_token) -> None:
    url = module_registry.url
    name, password = _name(), "a-password"
    victim = _name()
    assert _create(url, admin_token, name, password).status_code == 201
    assert _create(url, admin_token, victim, password).status_code == 201
    token = token_of(url, name, password)
    attempts = [
        ("GET", USERS, None),
        ("GET", f"{USERS}/{victim}", None),
        ("POST", USERS, {"username": _name(), "password": "a-password", "role": "admin"}),
        ("PATCH", f"{USERS}/{victim}", {"password": "taken-over!"}),
        ("PATCH", f"{USERS}/{name}", {"role": "admin"}),
        ("DELETE", f"{USERS}/{victim}", None),
    ]
    for method, path, body in attempts:
        refused(call(url, method, path, token, json=body), 403, "DENIED")
        refused(call(url, method, path, None, json=body), 401, "UNAUTHORIZED")
    rows = {row["name"]: row for row in call(url, "GET", USERS, admin_token).json()["data"]}
    assert rows[name]["role"] == "user" and rows[victim]["disabled"] is False
    assert token_of(url, victim, password)
    # a user may still sign out
    assert call(url, "POST", "/api/auth/logout", token).status_code == 200


def test_a_new_password_ends_the_sessions_opened_before(module_registry, admin_token) -> None:
    url = module_registry.url
    name, old, new = _name(), "first-" + uuid.uuid4().hex, "second-" + uuid.uuid4().hex
    assert _create(url, admin_token, name, old).status_code == 201
    before = token_of(url, name, old)
    assert call(url, "GET", "/api/namespaces", before).status_code == 200
    changed = call(url, "PATCH", f"{USERS}/{name}", admin_token, json={"password": new})
    assert changed.status_code == 200, changed.text
    refused(call(url, "GET", "/api/namespaces", before), 401, "UNAUTHORIZED")
    after = token_of(url, name, new)  # a session opened after the change works
    assert call(url, "GET", "/api/namespaces", after).status_code == 200


def test_the_last_admin_stays(module_registry, admin_token) -> None:
    url = module_registry.url
    others = [
        row["name"]
        for row in call(url, "GET", USERS, admin_token).json()["data"]
        if row["role"] == "admin" and not row["disabled"] and row["name"] != "admin"
    ]
    for other in others:  # admins made by other tests: demote them (admin is then the last)
        call(url, "PATCH", f"{USERS}/{other}", admin_token, json={"role": "user"})
    for method, body in (
        ("PATCH", {"role": "user"}),
        ("PATCH", {"disabled": True}),
        ("DELETE", None),
    ):
        answer = call(url, method, f"{USERS}/admin", admin_token, json=body)
        refused(answer, 409, "INVALID_INPUT")
    # with a second admin, the first may step down
    name, password = _name("adm"), "admin-" + uuid.uuid4().hex
    assert _create(url, admin_token, name, password, role="admin").status_code == 201
    second = token_of(url, name, password)
    assert (
        call(url, "PATCH", f"{USERS}/{name}", admin_token, json={"disabled": True}).status_code
        == 200
    )
    answer = call(url, "PATCH", f"{USERS}/{name}", admin_token, json={"disabled": False})
    assert answer.status_code == 200
    # the second admin may demote the first; then the second is the last
    assert call(url, "PATCH", f"{USERS}/admin", second, json={"role": "user"}).status_code == 200
    refused(
        call(url, "PATCH", f"{USERS}/{name}", second, json={"role": "user"}), 409, "INVALID_INPUT"
    )
    assert call(url, "PATCH", f"{USERS}/admin", second, json={"role": "admin"}).status_code == 200
