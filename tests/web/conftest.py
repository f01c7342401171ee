"""The web UI's browser tests: Debian's Chromium driven by pytest-playwright (never a
browser download), one registry per test module, screenshots of the main pages in both
languages under `artifacts/screenshots/` (CI keeps them)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.auth import ADMIN
from tests.support import RegistryProcess

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixtures
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests run last: Playwright's sync API keeps an event loop running in the
    main thread for the rest of the session, and every later `asyncio.run()` of another test
    fails ("cannot be called from a running event loop"). pytest's grouping by the browser
    parameter moved them to the middle of a whole run."""
    here = Path(__file__).parent
    items.sort(key=lambda item: item.path.is_relative_to(here))  # stable: order otherwise kept


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("the browser tests need Debian's chromium (apt-get install chromium)")
    # root in a container: Chromium's sandbox needs user namespaces it may not have
    return {**browser_type_launch_args, "executable_path": chromium, "args": ["--no-sandbox"]}


@pytest.fixture
def web(module_registry: RegistryProcess) -> RegistryProcess:
    return module_registry


def sign_in(page: Page, registry: RegistryProcess, who: tuple[str, str] = ADMIN, path: str = "/"):
    """Sign in through the form (the way a person does), landing on `path`."""
    page.goto(f"{registry.url}/login?next={path}")
    page.get_by_label(re.compile("Username|用户名")).fill(who[0])
    page.get_by_label(re.compile("^(Password|密码)$")).fill(who[1])
    page.get_by_role("button", name=re.compile("^(Sign in|登录)$")).click()
    page.wait_for_url(re.compile(re.escape(registry.url + path.split("?")[0])))


@pytest.fixture
def signed_in(page: Page, web: RegistryProcess) -> Callable[..., Page]:
    def go(who: tuple[str, str] = ADMIN, path: str = "/") -> Page:
        sign_in(page, web, who, path)
        return page

    return go


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as `artifacts/screenshots/<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def cookie_of(page: Page, name: str) -> dict[str, Any]:
    return next(c for c in page.context.cookies() if c["name"] == name)


def session_client(registry: RegistryProcess, page: Page) -> httpx.Client:
    """A plain HTTP client holding the browser's cookies (to send what a browser would not)."""
    jar = {c["name"]: c["value"] for c in page.context.cookies()}
    return httpx.Client(base_url=registry.url, cookies=jar, follow_redirects=False, timeout=30)
