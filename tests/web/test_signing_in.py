"""Signing in and out of the web UI in a real browser, the session cookie, the language
toggle, and the refusals: signed out → /login, a form without its CSRF token → 403."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.apiclient import call, token_of
from tests.auth import ADMIN
from tests.web.conftest import cookie_of, screenshot, session_client, sign_in


def test_a_page_visited_signed_out_goes_to_the_sign_in_page_and_back(page: Page, web) -> None:
    page.goto(f"{web.url}/account?tab=1")
    expect(page).to_have_url(re.compile(r"/login\?next=/account%3Ftab%3D1$"))
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password", exact=True).fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The username or password is wrong.")
    expect(page.get_by_label("Username")).to_have_value(ADMIN[0])
    screenshot(page, "login-en")
    page.get_by_label("Password", exact=True).fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{web.url}/account?tab=1")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("System administrator")


def test_the_session_cookie_is_httponly_and_samesite(page: Page, web) -> None:
    sign_in(page, web, path="/account")
    cookie = cookie_of(page, "cyp_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # CYP_PUBLIC_URL is not https here
    assert page.evaluate("document.cookie").find("cyp_session") == -1


def test_signing_out_ends_the_session_everywhere(page: Page, web) -> None:
    sign_in(page, web, path="/account")
    stolen = session_client(web, page)
    assert stolen.get("/account").status_code == 200
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{web.url}/login")
    page.goto(f"{web.url}/account")
    expect(page).to_have_url(re.compile(r"/login\?next=/account$"))
    again = stolen.get("/account")  # the old cookie, replayed
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=/account"


def test_a_form_without_its_csrf_token_is_refused(page: Page, web) -> None:
    sign_in(page, web, path="/account")
    client = session_client(web, page)
    for path, form in [
        ("/logout", {}),
        ("/account/password", {"current": ADMIN[1], "new": "another-password-1"}),
        ("/language", {"lang": "zh-CN"}),
    ]:
        refused = client.post(path, data=form)
        assert refused.status_code == 403, path
        assert "text/html" in refused.headers["content-type"]
        assert "This form expired or came from another site" in refused.text
        forged = client.post(path, data={**form, "csrf": "x" * 32})
        assert forged.status_code == 403, path
    # nothing happened: still signed in, still English
    assert client.get("/account").status_code == 200
    assert 'lang="en"' in client.get("/account").text


def test_sign_in_itself_needs_the_csrf_value_of_its_form(web) -> None:
    with httpx.Client(base_url=web.url, follow_redirects=False) as client:
        client.get("/login")
        refused = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]})
        assert refused.status_code == 403
        assert "cyp_session" not in refused.headers.get("set-cookie", "")


def test_after_signing_in_it_goes_only_to_a_page_of_this_site(page: Page, web) -> None:
    for target in ["//evil.example/x", "https://evil.example/", "/\\evil.example"]:
        page.context.clear_cookies()
        page.goto(f"{web.url}/login?next={target}")
        page.get_by_label("Username").fill(ADMIN[0])
        page.get_by_label("Password", exact=True).fill(ADMIN[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert page.url.startswith(web.url + "/"), target


def test_the_language_toggle_and_accept_language(page: Page, web) -> None:
    page.goto(f"{web.url}/login")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    screenshot(page, "login-zh-CN")
    sign_in(page, web, path="/account")
    expect(page.get_by_role("heading", name="我的账户")).to_be_visible()
    expect(page.get_by_role("link", name="镜像管理")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    with httpx.Client(base_url=web.url) as client:
        chinese = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        assert "<h1>登录</h1>" in chinese.text and chinese.headers["content-language"] == "zh-CN"
        other = client.get("/login", headers={"Accept-Language": "fr-FR,de;q=0.8"})
        assert "<h1>Sign in</h1>" in other.text


def test_changing_the_password_ends_the_sessions(page: Page, web) -> None:
    call(
        web.url,
        "POST",
        "/api/users",
        token_of(web.url, *ADMIN),
        json={"username": "carol", "password": "carol-password-1", "role": "user"},
    )
    sign_in(page, web, ("carol", "carol-password-1"), "/account")
    api_token = token_of(web.url, "carol", "carol-password-1")
    old_session = session_client(web, page)
    page.get_by_label("Current password").fill("not it")
    page.get_by_label("New password").fill("carol-password-2")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_have_text("The current password is wrong.")
    page.get_by_label("Current password").fill("carol-password-1")
    page.get_by_label("New password").fill("carol-password-2")
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(f"{web.url}/login?changed=1")
    expect(page.get_by_role("status")).to_contain_text("Your password was changed")
    assert old_session.get("/account").status_code == 303
    assert call(web.url, "GET", "/api/images", api_token).status_code == 401
    sign_in(page, web, ("carol", "carol-password-2"), "/account")
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()


def test_a_disabled_user_is_signed_out(page: Page, web) -> None:
    admin = token_of(web.url, *ADMIN)
    call(
        web.url,
        "POST",
        "/api/users",
        admin,
        json={"username": "dave", "password": "dave-password-1", "role": "user"},
    )
    sign_in(page, web, ("dave", "dave-password-1"), "/account")
    call(web.url, "PATCH", "/api/users/dave", admin, json={"disabled": True})
    page.goto(f"{web.url}/account")
    expect(page).to_have_url(re.compile(r"/login\?next=/account$"))


def test_sign_in_is_throttled_like_token(page: Page, registry_factory) -> None:
    registry = registry_factory(CYP_LOGIN_MAX_FAILURES="3").start()
    page.goto(f"{registry.url}/login")
    for _ in range(3):
        page.get_by_label("Username").fill(ADMIN[0])
        page.get_by_label("Password", exact=True).fill("wrong")
        page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password", exact=True).fill(ADMIN[1])
    with page.expect_response(re.compile(r"/login$")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 429
    assert answer.value.headers["retry-after"].isdigit()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")


def test_pages_carry_the_security_headers(web) -> None:
    with httpx.Client(base_url=web.url) as client:
        for path in ["/login", "/nonexistent-page", "/static/app.css"]:
            answer = client.get(path)
            csp = answer.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp
            assert answer.headers["x-content-type-options"] == "nosniff"
        missing = client.get("/nonexistent-page")
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_the_session_cookie_is_secure_behind_an_https_public_url(registry_factory) -> None:
    registry = registry_factory(CYP_PUBLIC_URL="https://registry.example").start()
    with httpx.Client(base_url=registry.url, follow_redirects=False) as client:
        form = client.get("/login")
        csrf = form.cookies["cyp_csrf"]
        answer = client.post(
            "/login",
            data={"username": ADMIN[0], "password": ADMIN[1], "csrf": csrf},
        )
    assert answer.status_code == 303
    session = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("cyp_session="))
    flags = {part.strip().lower() for part in session.split(";")[1:]}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags
