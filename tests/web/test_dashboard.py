"""The dashboard at `/` in a real browser: its numbers are those /api gives the same user
(storage total and per namespace, counts, the event store's head and the views' lag, the
repositories' sizes and pulls), its pushes and pulls per day count the pushes and pulls
made, a user sees only their namespaces' numbers, the live
feed shows an event pushed while the page is open (and only what its reader may see), the
charts are SVG inside the page (nothing asked of another origin), zh-CN, and 375 px."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.apiclient import call, token_of
from tests.auth import ADMIN
from tests.images import OCI_MANIFEST, push_image
from tests.support import RegistryProcess, create_database, delete_stream, drop_database
from tests.web.conftest import screenshot, session_client, sign_in
from tests.world import BASE, World, build


@pytest.fixture(scope="module")
def web(pg_admin_url: str, nats_url: str, tmp_path_factory) -> Iterator[RegistryProcess]:
    """One registry for the module that records its pulls every half second (the pull
    charts show them; the other registries under test record them when they stop)."""
    url = create_database(pg_admin_url)
    data = tmp_path_factory.mktemp("dashboard") / "data"
    registry = RegistryProcess(url, nats_url, data, CYP_PULL_FLUSH_SECONDS="0.5").start()
    try:
        yield registry
    finally:
        registry.stop()
        delete_stream(nats_url, registry.stream)
        drop_database(pg_admin_url, url)


@pytest.fixture(scope="module")
def world(web: RegistryProcess) -> World:
    return build(web)


def _info(world: World, token: str) -> dict[str, Any]:
    answer = call(world.url, "GET", "/api/system/info", token)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def _value(page: Page, selector: str) -> int:
    return int(page.locator(f"{selector} data").first.get_attribute("value"))


def _namespaces(page: Page) -> list[dict[str, Any]]:
    rows = page.locator("#namespaces-table tbody tr")
    return [
        {
            "namespace": row.get_attribute("data-namespace"),
            "blobs": int(row.locator("data").nth(0).get_attribute("value")),
            "bytes": int(row.locator("data").nth(1).get_attribute("value")),
        }
        for row in rows.all()
    ]


def _pushed_today(page: Page) -> tuple[int, int]:
    """(tags, manifests) pushed today (UTC), from the chart's table."""
    today = datetime.now(UTC).date().isoformat()
    cells = page.locator(f'#pushes-table tr[data-day="{today}"] td')
    return int(cells.nth(0).text_content().replace(",", "")), int(
        cells.nth(1).text_content().replace(",", "")
    )


def _settled(page: Page, world: World, token: str) -> dict[str, Any]:
    """/api/system/info as the page shows it: reloads until the page shows every view
    current (the sign-in's own event projected) and nothing happened between the page and
    the /api answer (a flush of pulls is an event too)."""
    for _ in range(50):
        lags = page.locator("#views-table [data-lag]").evaluate_all(
            "cells => cells.map(c => c.dataset.lag)"
        )
        if lags and all(lag == "0" for lag in lags):
            info = _info(world, token)
            if info["event_store"]["head_position"] == _value(page, "#event-head"):
                return info
        page.wait_for_timeout(100)
        page.reload()
    raise AssertionError(f"views never current on the page: {lags}")


def _wait(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _repositories(world: World, token: str) -> dict[str, dict[str, Any]]:
    answer = call(world.url, "GET", "/api/repositories", token, params={"limit": 100})
    return {r["name"]: r for r in answer.json()["data"]["items"]}


def _pull(web: RegistryProcess, who: tuple[str, str], reference: str, times: int) -> None:
    repository, tag = reference.split(":")
    with web.client(who) as client:
        for _ in range(times):
            answer = client.get(
                f"/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}
            )
            assert answer.status_code == 200


def _ranking(page: Page, table: str) -> list[list[Any]]:
    return page.locator(f"{table} tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.repository,"
        " Number(r.querySelector('data').getAttribute('value'))])"
    )


def test_signed_out_the_dashboard_goes_to_sign_in(page: Page, web) -> None:
    page.goto(f"{web.url}/")
    expect(page).to_have_url(f"{web.url}/login?next=/")
    signed_out = session_client(web, page).get("/events/stream")
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login")


def test_the_admin_sees_what_api_says_in_svg_of_this_origin(page: Page, web, world: World) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    token = token_of(world.url, *ADMIN)  # (before the page: signing in is an event)
    sign_in(page, web, ADMIN, "/")
    info = _settled(page, world, token)
    assert _value(page, "#storage-total") == info["storage"]["bytes"] > 0
    assert _value(page, "#repository-count") == info["counts"]["repositories"]
    expect(page.locator("#tag-count")).to_contain_text(f"{info['counts']['tags']} tags")
    assert _namespaces(page) == info["storage"]["namespaces"]
    assert {"alice", "bob", "library", "shared", "team"} <= {
        n["namespace"] for n in _namespaces(page)
    }
    assert _value(page, "#event-head") == info["event_store"]["head_position"]
    shown = page.locator("#views-table tr[data-view]").evaluate_all(
        "rows => rows.map(r => [r.dataset.view,"
        " Number(r.querySelector('[data-position]').dataset.position),"
        " Number(r.querySelector('[data-lag]').dataset.lag)])"
    )
    assert shown == [[v["name"], v["position"], v["lag"]] for v in info["views"]]
    assert {"pushes", "storage", "history"} <= {name for name, _, _ in shown}
    expect(page.locator("#status")).to_have_attribute("data-status", info["status"])
    for name in ("postgres", "nats", "storage"):
        expect(page.locator(f'[data-component="{name}"] .badge')).to_have_text("up")
    # the largest repositories, as /api/repositories sizes them
    sizes = [[r["name"], r["size"]] for r in _repositories(world, token).values()]
    assert _ranking(page, "#largest-table") == sorted(sizes, key=lambda r: (-r[1], r[0]))[:10]
    # charts drawn inside the page, each an image with a name; no other origin asked
    charts = page.locator("main svg.chart[role=img]")
    expect(charts).to_have_count(5)
    for label in charts.evaluate_all("svgs => svgs.map(s => s.getAttribute('aria-label'))"):
        assert label
    expect(page.locator("main svg.chart rect.bar title").first).to_be_attached()
    expect(page.locator("#feed li").first).to_be_visible()
    screenshot(page, "dashboard-en")
    assert requested and all(url.startswith(world.url + "/") for url in requested), requested
    assert any("/events/stream" in url for url in requested)  # the live feed connected


def test_pushes_per_day_count_the_pushes_made(page: Page, web, world: World) -> None:
    sign_in(page, web, ADMIN, "/")
    tags, manifests = _pushed_today(page)
    assert tags >= 9 and manifests >= 9  # the world's pushes
    with web.client() as client:
        push_image(client, "counted/app", "1", [BASE, b"counted 1"])
        push_image(client, "counted/app", "2", [BASE, b"counted 2"])
        push_image(client, "counted/app", "1", [BASE, b"counted 1 again"])  # the tag moves
    page.reload()
    assert _pushed_today(page) == (tags + 3, manifests + 3)
    expect(page.locator("#pushes-table tbody tr")).to_have_count(30)
    bars = page.locator("svg.chart").first.locator("rect.bar")
    expect(bars).to_have_count(30)
    expect(bars.last.locator("title")).to_have_text(re.compile(rf": {tags + 3}$"))
    # the same count as the audit log's tag moves of today
    token = token_of(world.url, *ADMIN)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    moves = call(
        world.url,
        "GET",
        "/api/history",
        token,
        params={"type": "tag.moved", "since": today, "limit": 500},
    ).json()["data"]["items"]
    assert len(moves) == tags + 3


def test_pulls_per_day_and_the_repositories_pulled_most(page: Page, web, world) -> None:
    token = token_of(world.url, *ADMIN)
    before = _repositories(world, token)
    _pull(web, ADMIN, "myapp:latest", 5)
    _pull(web, ADMIN, "shared/tool:1", 2)
    expected = before["myapp"]["pull_count"] + 5
    _wait(lambda: _repositories(world, token)["myapp"]["pull_count"] == expected)
    _wait(lambda: _repositories(world, token)["shared/tool"]["pull_count"] >= 2)
    sign_in(page, web, ADMIN, "/")
    repositories = _repositories(world, token)
    pulled = [[r["name"], r["pull_count"]] for r in repositories.values() if r["pull_count"]]
    assert _ranking(page, "#most-pulled-table") == sorted(pulled, key=lambda r: (-r[1], r[0]))
    assert _ranking(page, "#most-pulled-table")[0] == ["myapp", 5]
    today = datetime.now(UTC).date().isoformat()
    shown = page.locator(f'#pulls-table tr[data-day="{today}"] data').get_attribute("value")
    assert int(shown) == sum(n for _, n in pulled)  # every pull of this module was today
    expect(page.locator("#pulls-table tbody tr")).to_have_count(30)
    expect(page.locator("#pulls-total")).to_contain_text(f"{sum(n for _, n in pulled)} pulls")
    expect(page.locator("#feed")).to_contain_text("pulls of myapp recorded")


def test_a_user_sees_only_their_namespaces_numbers(page: Page, web, world: World) -> None:
    alice = ("alice", world.passwords["alice"])
    token = token_of(world.url, *alice)
    sign_in(page, web, alice, "/")
    info = _settled(page, world, token)
    assert _namespaces(page) == info["storage"]["namespaces"]
    assert {n["namespace"] for n in _namespaces(page)} == {"alice", "shared"}
    assert _value(page, "#repository-count") == info["counts"]["repositories"] == 2
    assert _value(page, "#storage-total") == info["storage"]["bytes"]  # the registry's, as /api
    largest = page.locator("#largest-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.repository)"
    )
    assert sorted(largest) == ["alice/app", "shared/tool"]
    _pull(web, ("bob", world.passwords["bob"]), "bob/secret:1", 3)  # not hers to count
    _pull(web, alice, "alice/app:1", 2)
    _wait(lambda: _repositories(world, token)["alice/app"]["pull_count"] >= 2)
    _wait(lambda: _repositories(world, world.admin)["bob/secret"]["pull_count"] >= 3)
    page.reload()
    hers = {name: r["pull_count"] for name, r in _repositories(world, token).items()}
    assert set(hers) == {"alice/app", "shared/tool"}
    ranked = _ranking(page, "#most-pulled-table")
    assert ranked == sorted(([k, v] for k, v in hers.items() if v), key=lambda r: (-r[1], r[0]))
    today = datetime.now(UTC).date().isoformat()
    shown = page.locator(f'#pulls-table tr[data-day="{today}"] data').get_attribute("value")
    assert int(shown) == sum(hers.values())
    before = _pushed_today(page)
    with web.client(("bob", world.passwords["bob"])) as client:
        push_image(client, "bob/secret", "3", [BASE, b"bob secret 3"])
    with web.client(alice) as client:
        push_image(client, "alice/app", "2", [BASE, b"alice app 2"])
    page.reload()
    assert _pushed_today(page) == (before[0] + 1, before[1] + 1)  # hers, not bob's
    assert "bob" not in page.locator("main").inner_text()  # no namespace, repository, event
    expect(page.locator("#feed li").first).to_contain_text("alice pushed alice/app:2")


def test_the_live_feed_shows_an_event_pushed_while_the_page_is_open(
    page: Page, web, world: World
) -> None:
    alice = ("alice", world.passwords["alice"])
    sign_in(page, web, alice, "/")
    feed = page.locator("#feed li")
    expect(feed.first).to_be_visible()
    # the stream continues from the newest event the page shows: nothing pushed from now on
    # can fall between the page and its stream
    head = page.locator("#feed").get_attribute("data-stream")
    assert re.fullmatch(r"/events/stream\?after=\d+", head)
    with web.client(("bob", world.passwords["bob"])) as client:
        push_image(client, "bob/secret", "live", [BASE, b"bob live"])  # not hers to see
    with web.client(alice) as client:
        push_image(client, "alice/app", "live", [BASE, b"alice live"])
    expect(feed.first).to_contain_text("alice pushed alice/app:live (sha256:")
    expect(page.locator("#feed")).not_to_contain_text("bob/secret")
    assert re.match(r"^\w{3} \d+, \d{4}, .* UTC · alice pushed", feed.first.text_content())


def test_the_stream_is_the_api_stream_with_a_line_of_text(page: Page, web, world: World) -> None:
    sign_in(page, web, ADMIN, "/")
    client = session_client(web, page)
    head = _value(page, "#event-head")
    with client.stream("GET", "/events/stream", params={"after": head - 1}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = answer.iter_lines()
        first = _event(lines)
    api = call(world.url, "GET", "/api/history", token_of(world.url, *ADMIN), params={"limit": 500})
    by_position = {e["position"]: e for e in api.json()["data"]["items"]}
    text = first.pop("text")
    assert first == by_position[first["position"]] and first["position"] == head
    assert " · " in text
    refused = client.get("/events/stream", params={"after": "nope"})
    assert refused.status_code == 400 and "text/html" in refused.headers["content-type"]


def test_in_chinese_and_on_a_phone(page: Page, web, world: World) -> None:
    sign_in(page, web, ADMIN, "/")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("仪表盘")
    for heading in ("已用存储", "每日推送", "各命名空间存储", "占用最大的仓库", "实时事件"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.locator("svg.chart").first).to_have_attribute(
        "aria-label", "最近 30 天每日推送的标签"
    )
    expect(page.locator("#feed li").first).to_contain_text("年")  # dates written in Chinese
    screenshot(page, "dashboard-zh-CN")
    page.set_viewport_size({"width": 375, "height": 800})
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("仪表盘")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def _event(lines) -> dict[str, Any]:
    for line in lines:
        if line.startswith("data:"):
            return json.loads(line[5:])
    raise AssertionError("the stream ended")
