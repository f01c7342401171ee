"""The administration room in a real browser: users (create, role, disable, reset password),
namespaces (create, visibility, members), personal access tokens and robots (the secret shown
once, usable with docker's token flow, revoked and refused); what a non-admin is refused;
zh-CN; 375 px. One registry for the module, logging at info so that its log file holds every
request line (the secret must be in none)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from api.web.security import session_csrf
from tests.apiclient import call, claims, token_of
from tests.auth import ADMIN, fetch_token
from tests.support import RegistryProcess, registry_process
from tests.web.conftest import cookie_of, screenshot, session_client, sign_in

FRANK = ("frank", "frank-password-1")


@pytest.fixture(scope="module")
def module_registry(
    pg_admin_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryProcess]:
    data = tmp_path_factory.mktemp("reg") / "data"
    with registry_process(pg_admin_url, nats_url, data, CYP_LOG_LEVEL="info") as proc:
        yield proc


def _user(web: RegistryProcess, who: tuple[str, str], role: str = "user") -> None:
    admin = token_of(web.url, *ADMIN)
    answer = call(
        web.url,
        "POST",
        "/api/users",
        admin,
        json={"username": who[0], "password": who[1], "role": role},
    )
    assert answer.status_code in (201, 409), answer.text


def _submit(page: Page, button: str | Locator, accept: bool = False) -> int:
    """Click a submit button; the status of the POST's answer (303 when it redirects). The
    browser's own checks of the fields (minlength, required) are off: the server's are tested."""
    page.evaluate("document.querySelectorAll('form').forEach(f => { f.noValidate = true; })")
    if accept:
        page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        if isinstance(button, str):
            button = page.get_by_role("button", name=button, exact=True)
        button.click()
    page.wait_for_load_state()
    return answer.value.status


def _second(browser: Browser, web: RegistryProcess, who: tuple[str, str], path: str) -> Page:
    other = browser.new_context().new_page()
    sign_in(other, web, who, path)
    return other


def test_an_admin_manages_a_user_who_is_signed_out_when_disabled(
    page: Page, browser: Browser, web: RegistryProcess
) -> None:
    sign_in(page, web, path="/admin/users")
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    create = page.locator("form[action='/admin/users']")

    # bad input: the form again with what was wrong, nothing created
    for name, password, status, message in [
        ("erin", "short", 400, "A password is 8 to 1024 characters long."),
        ("Erin!", "erin-password-1", 400, "A username is 2 to 64 lowercase letters"),
        ("library", "erin-password-1", 400, "A username is 2 to 64 lowercase letters"),
        ("admin", "erin-password-1", 409, "A user of that name exists already."),
    ]:
        create.get_by_label("Username").fill(name)
        create.get_by_label("Password").fill(password)
        assert _submit(page, "Create user") == status, name
        expect(page.get_by_role("alert")).to_contain_text(message)
        expect(create.get_by_label("Username")).to_have_value(name)
    assert call(web.url, "GET", "/api/users/erin", token_of(web.url, *ADMIN)).status_code == 404

    create.get_by_label("Username").fill("erin")
    create.get_by_label("Password").fill("erin-password-1")
    assert _submit(page, "Create user") == 303
    expect(page).to_have_url(f"{web.url}/admin/users/erin?done=created")
    expect(page.get_by_role("status")).to_have_text("The user was created.")
    page.goto(f"{web.url}/admin/users")
    expect(page.get_by_role("row", name=re.compile(r"^erin User Enabled"))).to_be_visible()
    screenshot(page, "admin-users-en")

    erin = _second(browser, web, ("erin", "erin-password-1"), "/account")
    expect(erin.get_by_role("heading", name="Your account")).to_be_visible()

    page.goto(f"{web.url}/admin/users/erin")
    _submit(page, "Disable user", accept=True)
    expect(page.get_by_role("status")).to_contain_text("The user was disabled")
    erin.goto(f"{web.url}/account")
    expect(erin).to_have_url(re.compile(r"/login\?next=/account$"))
    sign_in_refused = erin.get_by_label("Username")
    sign_in_refused.fill("erin")
    erin.get_by_label("Password", exact=True).fill("erin-password-1")
    erin.get_by_role("button", name="Sign in").click()
    expect(erin.get_by_role("alert")).to_have_text("The username or password is wrong.")

    _submit(page, "Enable user")
    expect(page.get_by_role("status")).to_have_text("The user was enabled.")
    page.get_by_label("Role").select_option("admin")
    _submit(page, "Change role")
    expect(page.get_by_role("status")).to_have_text("The role was changed.")
    expect(page.locator("dl.facts")).to_contain_text("System administrator")

    page.get_by_label("New password").fill("short")
    assert _submit(page, "Set password") == 400
    expect(page.get_by_role("alert")).to_contain_text("A password is 8 to 1024")
    page.get_by_label("New password").fill("erin-password-2")
    _submit(page, "Set password")
    expect(page.get_by_role("status")).to_contain_text("The password was set")
    sign_in(erin, web, ("erin", "erin-password-2"), "/admin/users")  # an admin now
    expect(erin.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    assert (
        httpx.post(
            f"{web.url}/api/auth/login", json={"username": "erin", "password": "erin-password-1"}
        ).status_code
        == 401
    )
    erin.context.close()


def test_the_last_enabled_admin_stays_one(page: Page, web: RegistryProcess) -> None:
    admin = token_of(web.url, *ADMIN)
    others = [
        u["name"]
        for u in call(web.url, "GET", "/api/users", admin).json()["data"]
        if u["role"] == "admin" and u["name"] != ADMIN[0] and not u["disabled"]
    ]
    for name in others:  # leave admin the only one
        call(web.url, "PATCH", f"/api/users/{name}", admin, json={"role": "user"})
    sign_in(page, web, path="/admin/users/admin")
    page.get_by_label("Role").select_option("user")
    assert _submit(page, "Change role") == 409
    expect(page.get_by_role("alert")).to_contain_text("The last enabled system administrator")
    assert _submit(page, "Disable user", accept=True) == 409
    me = call(web.url, "GET", "/api/users/admin", admin).json()["data"]
    assert me["role"] == "admin" and me["disabled"] is False


def test_a_namespace_with_a_member(page: Page, browser: Browser, web: RegistryProcess) -> None:
    _user(web, FRANK)
    sign_in(page, web, path="/admin/namespaces")
    create = page.locator("form[action='/admin/namespaces']")
    for name, status, message in [
        ("Team!", 400, "A namespace name is 1 to 64 lowercase letters"),
        ("frank", 409, "That name is taken by a namespace or a user."),
    ]:
        create.get_by_label("Name").fill(name)
        assert _submit(page, "Create namespace") == status, name
        expect(page.get_by_role("alert")).to_contain_text(message)
    create.get_by_label("Name").fill("team")
    _submit(page, "Create namespace")
    expect(page).to_have_url(f"{web.url}/admin/namespaces/team?done=created")
    expect(page.locator("dl.facts")).to_contain_text("Private")

    add = page.locator("form[action='/admin/namespaces/team/members']")
    add.get_by_label("Username").fill("nobody")
    assert _submit(page, "Add member") == 404
    expect(page.get_by_role("alert")).to_have_text("There is no user of that name.")
    expect(add.get_by_label("Username")).to_have_value("nobody")
    add.get_by_label("Username").fill("frank")
    add.get_by_label("Role").select_option("reader")
    _submit(page, "Add member")
    expect(page.get_by_role("status")).to_have_text("The member was added.")
    expect(page.get_by_label("Role of frank")).to_have_value("reader")

    # the member sees it, and what they may not change is neither shown nor done
    frank = _second(browser, web, FRANK, "/admin/namespaces")
    expect(frank.get_by_role("link", name="team", exact=True)).to_be_visible()
    frank.get_by_role("link", name="team", exact=True).click()
    expect(frank.get_by_role("cell", name="Reader", exact=True)).to_be_visible()
    expect(frank.get_by_role("button", name="Make public")).to_have_count(0)
    expect(frank.get_by_role("button", name="Leave")).to_be_visible()
    forged = session_client(web, frank)
    csrf = session_csrf(cookie_of(frank, "cyp_session")["value"])
    refused = forged.post(
        "/admin/namespaces/team/visibility", data={"csrf": csrf, "public": "true"}
    )
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    refused = forged.post(
        "/admin/namespaces/team/members", data={"csrf": csrf, "username": "frank", "role": "owner"}
    )
    assert refused.status_code == 403

    screenshot(page, "admin-namespace-en")
    _submit(page, "Make public", accept=True)
    expect(page.get_by_role("status")).to_contain_text("The namespace is public now")
    frank.reload()
    expect(frank.locator("dl.facts")).to_contain_text("Public")
    _submit(page, "Make private", accept=True)
    expect(page.locator("dl.facts")).to_contain_text("Private")

    page.get_by_label("Role of frank").select_option("owner")
    _submit(page, page.locator("form[action$='/members/frank/role']").get_by_role("button"))
    expect(page.get_by_role("status")).to_have_text("The member's role was changed.")
    frank.reload()
    expect(frank.get_by_role("button", name="Make public")).to_be_visible()
    # the last owner stays: frank, now an owner, removes admin, then cannot leave
    frank.once("dialog", lambda dialog: dialog.accept())
    admin_row = frank.locator("tr").filter(has=frank.get_by_role("cell", name="admin", exact=True))
    admin_row.get_by_role("button", name="Remove").click()
    expect(frank.get_by_role("status")).to_have_text("The member was removed.")
    frank.once("dialog", lambda dialog: dialog.accept())
    with frank.expect_response(lambda r: r.request.method == "POST") as answer:
        frank.get_by_role("button", name="Leave").click()
    assert answer.value.status == 409
    expect(frank.get_by_role("alert")).to_contain_text("A namespace keeps at least one owner")

    page.goto(f"{web.url}/admin/namespaces")
    expect(page.get_by_role("row", name=re.compile(r"^team Private"))).to_be_visible()
    screenshot(page, "admin-namespaces-en")
    frank.context.close()


def test_a_token_is_shown_once_works_and_is_refused_once_revoked(
    page: Page, web: RegistryProcess
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, web, path="/tokens")
    form = page.locator("form[action='/tokens']")
    for name, days, actions, status, message in [
        ("laptop", "0", ["Pull"], 400, "The expiry is a whole number of days, 1 to 3650."),
        ("laptop", "ninety", ["Pull"], 400, "The expiry is a whole number of days"),
        ("Laptop!", "30", ["Pull"], 400, "A name is 1 to 64 lowercase letters"),
        ("laptop", "30", [], 400, "Choose at least one action"),
    ]:
        form.get_by_label("Name", exact=True).fill(name)
        form.get_by_label("Expires in (days)").fill(days)
        for action in ["Pull", "Push", "Delete"]:
            form.get_by_label(action, exact=True).set_checked(action in actions)
        assert _submit(page, "Create token") == status, (name, days)
        expect(page.get_by_role("alert")).to_contain_text(message)
    expect(page.get_by_text("You have no access tokens yet.")).to_be_visible()

    form.get_by_label("Name", exact=True).fill("laptop")
    form.get_by_label("Expires in (days)").fill("30")
    form.get_by_label("Namespaces").fill("admin, team")
    form.get_by_label("Pull", exact=True).check()
    form.get_by_label("Push", exact=True).check()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Create token").click()
    assert answer.value.status == 201
    assert answer.value.headers["cache-control"] == "no-store"
    secret = page.locator("#secret").inner_text().strip()
    assert secret.startswith("cyp_pat_")
    copy = page.locator("button[data-copy='#secret']")
    assert copy.get_attribute("type") == "button"
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    expect(page.locator("#login")).to_have_text(f"docker login {web.host} -u 'admin'")
    screenshot(page, "tokens-created-en")

    # docker login's token flow: Basic auth with the secret at /token
    bearer = fetch_token(web.url, "admin", secret, ["repository:team/app:pull,push,delete"])
    assert claims(bearer)["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
    ]
    page.get_by_role("link", name="Done").click()
    expect(page).to_have_url(f"{web.url}/tokens")
    assert secret not in page.content()
    row = page.get_by_role("row", name=re.compile(r"^laptop"))
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("team: Pull, Push")
    screenshot(page, "tokens-en")
    _submit(page, "Revoke", accept=True)
    expect(page.get_by_role("status")).to_contain_text("The token was revoked")
    expect(row).to_contain_text("Revoked")
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        fetch_token(web.url, "admin", secret, ["repository:team/app:pull"])
    assert secret not in page.content()
    assert secret not in web.log.read_text()


def test_a_robot_of_a_managed_namespace(page: Page, web: RegistryProcess) -> None:
    token = token_of(web.url, *ADMIN)
    call(web.url, "POST", "/api/namespaces", token, json={"name": "ci-org"})
    sign_in(page, web, path="/tokens")
    page.get_by_role("link", name="Robots of ci-org").click()
    expect(page).to_have_url(f"{web.url}/tokens/robots/ci-org")
    form = page.locator("form[action='/tokens/robots/ci-org']")
    form.get_by_label("Name", exact=True).fill("builder")
    form.get_by_label("Push", exact=True).check()
    form.get_by_label("Description (optional)").fill("<img src=x onerror=alert(1)> builds")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Create robot").click()
    assert answer.value.status == 201
    secret = page.locator("#secret").inner_text().strip()
    assert secret.startswith("cyp_rbt_")
    expect(page.locator("#login")).to_contain_text("-u 'robot$ci-org+builder'")
    bearer = fetch_token(web.url, "robot$ci-org+builder", secret, ["repository:ci-org/app:push"])
    assert claims(bearer)["access"][0]["actions"] == ["push"]

    page.get_by_role("link", name="Done").click()
    expect(page.get_by_text("<img src=x onerror=alert(1)> builds")).to_be_visible()  # text
    expect(page.locator("main img")).to_have_count(0)
    form.get_by_label("Name", exact=True).fill("builder")
    assert _submit(page, "Create robot") == 409
    expect(page.get_by_role("alert")).to_have_text("A robot of that name exists in this namespace.")
    _submit(page, "Revoke", accept=True)
    expect(page.get_by_role("status")).to_contain_text("The robot was revoked")
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        fetch_token(web.url, "robot$ci-org+builder", secret, ["repository:ci-org/app:pull"])
    assert secret not in page.content() and secret not in web.log.read_text()
    forged = session_client(web, page)
    csrf = session_csrf(cookie_of(page, "cyp_session")["value"])
    for path in [
        "/tokens/robots/ci-org/%00/revoke",
        "/tokens/robots/ci-org/nobody/revoke",
        "/tokens/%00/revoke",
        "/tokens/" + "f" * 16 + "/revoke",
    ]:
        assert forged.post(path, data={"csrf": csrf}).status_code == 404, path


def test_a_user_who_is_not_an_admin_is_refused(page: Page, web: RegistryProcess) -> None:
    _user(web, FRANK)
    sign_in(page, web, FRANK, "/account")
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    expect(page.get_by_role("link", name="Namespaces")).to_be_visible()
    answer = page.goto(f"{web.url}/admin/users")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert page.goto(f"{web.url}/admin/users/admin").status == 403
    # robots of a namespace frank does not own: refused as /api refuses them
    assert page.goto(f"{web.url}/tokens/robots/ci-org").status == 404  # not visible to frank

    forged = session_client(web, page)
    csrf = session_csrf(cookie_of(page, "cyp_session")["value"])
    for path, form in [
        ("/admin/users", {"username": "mallory", "password": "mallory-pw-1", "role": "admin"}),
        ("/admin/users/frank/role", {"role": "admin"}),
        ("/admin/users/admin/disabled", {"disabled": "true"}),
        ("/admin/users/admin/password", {"password": "taken-over-1"}),
    ]:
        refused = forged.post(path, data={"csrf": csrf, **form})
        assert refused.status_code == 403, path
        assert "text/html" in refused.headers["content-type"]
    admin = token_of(web.url, *ADMIN)  # the admin's password still signs in
    assert call(web.url, "GET", "/api/users/mallory", admin).status_code == 404
    users = {u["name"]: u for u in call(web.url, "GET", "/api/users", admin).json()["data"]}
    assert users["frank"]["role"] == "user" and not users["admin"]["disabled"]
    # and without the CSRF token, even the user's own form is refused
    assert forged.post("/tokens", data={"name": "x", "expires_in_days": "1"}).status_code == 403


def test_the_pages_in_chinese(page: Page, web: RegistryProcess) -> None:
    page.goto(f"{web.url}/login")
    page.get_by_role("button", name="中文").click()
    sign_in(page, web, path="/admin/users")
    expect(page.get_by_role("heading", name="用户", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="创建用户")).to_be_visible()
    screenshot(page, "admin-users-zh-CN")
    page.goto(f"{web.url}/admin/namespaces")
    expect(page.get_by_role("heading", name="命名空间", exact=True)).to_be_visible()
    screenshot(page, "admin-namespaces-zh-CN")
    page.goto(f"{web.url}/tokens")
    expect(page.get_by_role("heading", name="访问令牌", exact=True)).to_be_visible()
    page.locator("#token-days").fill("0")
    page.locator("#token-name").fill("phone")
    assert _submit(page, "创建令牌") == 400
    expect(page.get_by_role("alert")).to_contain_text("天数")
    screenshot(page, "tokens-zh-CN")


def test_the_pages_fit_375_pixels(page: Page, web: RegistryProcess) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    sign_in(page, web, path="/admin/users")
    call(web.url, "POST", "/api/namespaces", token_of(web.url, *ADMIN), json={"name": "narrow"})
    for path in [
        "/admin/users",
        "/admin/users/admin",
        "/admin/namespaces",
        "/admin/namespaces/narrow",
        "/tokens",
        "/tokens/robots/narrow",
    ]:
        page.goto(f"{web.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    page.goto(f"{web.url}/tokens")
    page.locator("#token-name").fill("narrow")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#secret")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_the_namespace_list_goes_page_by_page(page: Page, web: RegistryProcess) -> None:
    admin = token_of(web.url, *ADMIN)
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {admin}"}) as api:
        for i in range(101):
            api.post("/api/namespaces", json={"name": f"zz-page-{i:03}"})
    listed = [n["name"] for n in call(web.url, "GET", "/api/namespaces", admin).json()["data"]]
    assert len(listed) > 101
    sign_in(page, web, path="/admin/namespaces")
    names = page.locator("tbody tr td:first-child")
    expect(names).to_have_count(100)
    assert names.all_inner_texts() == listed[:100]
    page.get_by_role("link", name="Next page").click()
    expect(page.get_by_role("link", name="First page")).to_be_visible()
    assert names.all_inner_texts() == listed[100:200]
