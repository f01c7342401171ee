"""The history room in a real browser: the audit log at /history with its filters and
pages, and a tag's timeline — the same events GET /api/history gives the same user, what a
pusher or a stranger controls shown as text, in English and zh-CN, at 375 px."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.apiclient import call
from tests.auth import ADMIN
from tests.images import push_image
from tests.web.conftest import screenshot, session_client, sign_in
from tests.world import BASE, World, build

SCRIPT = "<script>alert(1)</script>"
IMAGE_TAG = '<img src=x onerror="alert(2)">'
APP = "team/app"


@dataclass
class Story:
    world: World
    prod: list[str]  # the digests team/app:prod pointed at, in order (then it was deleted)


@pytest.fixture(scope="module")
def story(module_registry) -> Story:
    world = build(module_registry)
    prod = []
    with module_registry.client() as client:
        for n in range(3):  # created, then moved twice: three different manifests
            prod.append(push_image(client, APP, "prod", [BASE, f"app build {n}".encode()]))
        push_image(client, APP, "notes", [BASE, b"notes"], annotations={"note": SCRIPT})
    deleted = call(world.url, "DELETE", f"/api/images/{APP}/prod", world.admin)
    assert deleted.status_code == 200, deleted.text
    # a stranger's sign-in: the username and the user agent are whatever they sent
    failed = call(
        world.url,
        "POST",
        "/api/auth/login",
        json={"username": SCRIPT, "password": "nope"},
        headers={"User-Agent": IMAGE_TAG},
    )
    assert failed.status_code == 401
    return Story(world, prod)


def api_events(world: World, token: str, **params: Any) -> list[dict]:
    """Every event GET /api/history gives for these filters, newest first."""
    items, cursor = [], None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        answer = call(world.url, "GET", "/api/history", token, params=query)
        assert answer.status_code == 200, answer.text
        items += answer.json()["data"]["items"]
        cursor = answer.json()["data"]["next_cursor"]
        if cursor is None:
            return items


def positions(page: Page) -> list[int]:
    return page.locator("tr[data-position]").evaluate_all(
        "rows => rows.map(row => Number(row.dataset.position))"
    )


def open_as(page: Page, web, path: str, who: tuple[str, str] = ADMIN) -> None:
    """Sign in, then open `path` (a query of several fields does not survive `next=`)."""
    sign_in(page, web, who, "/history")
    page.goto(web.url + path)


def follow(page: Page, name: str) -> None:
    """Click the link called `name` and wait until its page is there."""
    link = page.get_by_role("link", name=name)
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(re.compile(re.escape(href) + "$"))


def every_page(page: Page) -> list[int]:
    """The positions of this page and of each older one, following the pager."""
    seen = positions(page)
    while page.get_by_role("link", name="Older →").count():
        follow(page, "Older →")
        seen += positions(page)
    return seen


def seconds(moment: str) -> datetime:
    """An /api time to the second, UTC without its zone (what the form's inputs hold)."""
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).replace(microsecond=0, tzinfo=None)


def test_a_tags_timeline_shows_every_move_with_its_digests_and_actor(
    page: Page, web, story: Story
) -> None:
    first, second, third = story.prod
    sign_in(page, web, path=f"/history/tags/{APP}/prod")
    expect(page.get_by_role("heading", name=f"Timeline of {APP}:prod")).to_be_visible()
    rows = page.locator("table.history-moves tbody tr")
    expect(rows).to_have_count(4)
    expected = [  # newest first: deleted, moved twice, created
        ("deleted", third, None),
        ("moved", second, third),
        ("moved", first, second),
        ("created", None, first),
    ]
    for row, (change, before, after) in zip(rows.all(), expected, strict=True):
        cells = row.locator("td")
        expect(cells.nth(2)).to_have_text(change)
        for cell, digest in ((cells.nth(3), before), (cells.nth(4), after)):
            if digest is None:
                expect(cell).to_have_text("—")
            else:
                expect(cell.locator("code")).to_have_attribute("title", digest)
                expect(cell).to_have_text(digest[:19] + "…")
        expect(cells.nth(1)).to_contain_text("admin")
        expect(cells.nth(1)).to_contain_text("127.0.0.1")
    # the same events as /api's filter of that tag
    api = api_events(story.world, story.world.admin, repository=APP, tag="prod")
    assert positions(page) == [e["position"] for e in api]
    assert [e["type"] for e in api] == ["tag.deleted", "tag.moved", "tag.moved", "tag.moved"]
    expect(page.get_by_role("link", name="The image now")).to_have_attribute(
        "href", f"/images/{APP}/prod"
    )
    screenshot(page, "history-timeline-en")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("heading", name=f"{APP}:prod 的时间线")).to_be_visible()
    expect(rows.nth(1).locator("td").nth(2)).to_have_text("移动")
    expect(rows.nth(3).locator("td").nth(2)).to_have_text("创建")
    screenshot(page, "history-timeline-zh-CN")


def test_the_timeline_is_paged(page: Page, web, story: Story) -> None:
    sign_in(page, web, path=f"/history/tags/{APP}/prod?limit=3")
    every = [
        e["position"]
        for e in api_events(story.world, story.world.admin, repository=APP, tag="prod")
    ]
    assert positions(page) == every[:3]
    follow(page, "Older →")
    assert positions(page) == every[3:]
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
    follow(page, "← Newer")
    assert positions(page) == every[:3]
    expect(page.get_by_role("link", name="← Newer")).to_have_count(0)


def test_the_log_says_what_happened_and_links_to_the_images(page: Page, web, story: Story) -> None:
    first, second, third = story.prod
    sign_in(page, web, path=f"/history?repository={APP}")
    expect(page.locator("tr[data-type='tag.deleted'] .sentence")).to_have_text(
        f"deleted tag {APP}:prod (it was {third[:19]}…)"
    )
    expect(page.locator("tr[data-type='tag.moved'] .sentence")).to_contain_text(
        [
            f"moved tag {APP}:prod from {second[:19]}… to {third[:19]}…",
            f"moved tag {APP}:prod from {first[:19]}… to {second[:19]}…",
            f"created tag {APP}:prod at {first[:19]}…",
        ]
    )
    pushed = page.locator("tr[data-type='manifest.pushed'] .sentence")
    expect(pushed.first).to_contain_text("pushed manifest sha256:")
    expect(pushed.first).to_contain_text(f"to {APP}")
    moved = page.locator("tr[data-type='tag.moved']", has_text=f"{APP}:prod").first
    expect(moved.get_by_role("link", name="Image")).to_have_attribute("href", f"/images/{APP}/prod")
    expect(moved.get_by_role("link", name="Timeline")).to_have_attribute(
        "href", f"/history/tags/{APP}/prod"
    )
    linked = page.locator("tr[data-type='blob.linked']").first
    expect(linked.get_by_role("link", name="Repository")).to_have_attribute(
        "href", f"/repositories/{APP}"
    )
    expect(moved.locator("td").nth(1)).to_contain_text("admin")
    expect(moved.locator("td").nth(1)).to_contain_text("127.0.0.1")
    # the sign-in of this very browser, in its own words
    page.goto(f"{web.url}/history?type=login.succeeded&actor=admin")
    expect(page.locator("tr[data-position] .sentence").first).to_have_text("signed in (web)")
    page.goto(f"{web.url}/history")
    screenshot(page, "history-en")


def test_the_filters_show_what_the_api_shows(page: Page, web, story: Story) -> None:
    world = story.world
    sign_in(page, web, path="/history")
    # through the form, as a person does
    page.get_by_label("Actor").fill("bob")
    page.get_by_label("Event type").select_option("tag.moved")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"actor=bob.*type=tag\.moved"))
    bob = api_events(world, world.admin, actor="bob", type="tag.moved")
    assert len(bob) == 2 and positions(page) == [e["position"] for e in bob]
    expect(page.get_by_label("Actor")).to_have_value("bob")
    page.get_by_role("link", name="Clear filters").click()
    expect(page.get_by_label("Actor")).to_have_value("")

    everything = api_events(world, world.admin)
    moments = sorted({seconds(e["occurred_at"]) for e in everything})
    assert len(moments) >= 3  # (the story takes seconds: argon2 hashes, pushes)
    since, until = moments[len(moments) // 3], moments[2 * len(moments) // 3]
    page.get_by_label("From (UTC)").fill(since.isoformat())
    page.get_by_label("Before (UTC)").fill(until.isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"since=.*until="))
    expect(page.get_by_label("From (UTC)")).to_have_value(since.isoformat())
    timed = api_events(
        world, world.admin, since=f"{since.isoformat()}Z", until=f"{until.isoformat()}Z"
    )
    assert timed and every_page(page) == [e["position"] for e in timed]

    for params in [
        {"actor": "bob"},
        {"type": "manifest.pushed"},
        {"repository": "team/web/frontend"},
        {"namespace": "team"},
        {"namespace": "team", "type": "tag.moved", "actor": "admin"},
        {"actor": "nobody-at-all"},
    ]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        page.goto(f"{web.url}/history?{query}&limit=500")
        found = [e["position"] for e in api_events(world, world.admin, **params)]
        assert positions(page) == found, params
        if not found:
            expect(page.get_by_text("No events match these filters.")).to_be_visible()


def test_a_user_sees_only_the_events_the_api_shows_them(page: Page, web, story: Story) -> None:
    world = story.world
    sign_in(page, web, ("alice", world.passwords["alice"]), "/history?limit=500")
    mine = api_events(world, world.alice)
    assert mine and positions(page) == [e["position"] for e in mine]
    assert {e["namespace"] for e in mine if e["actor"] != "alice"} <= {"alice", "shared"}
    text = page.locator("main").inner_text()
    assert "bob/secret" not in text and APP not in text and "onerror" not in text
    # filters cannot reach further than what she may see
    page.goto(f"{web.url}/history?actor=bob&limit=500")
    assert positions(page) == []
    page.goto(f"{web.url}/history/tags/bob/secret/1")
    expect(page.get_by_text("No changes of this tag that you may see.")).to_be_visible()
    page.goto(f"{web.url}/history/tags/alice/app/1")
    own = api_events(world, world.alice, repository="alice/app", tag="1")
    assert own and positions(page) == [e["position"] for e in own]


def test_pages_go_older_and_newer(page: Page, web, story: Story) -> None:
    world = story.world
    every = [e["position"] for e in api_events(world, world.admin, namespace="team")]
    open_as(page, web, "/history?namespace=team&limit=7")
    expect(page.get_by_role("link", name="← Newer")).to_have_count(0)
    seen = positions(page)
    while page.get_by_role("link", name="Older →").count():
        follow(page, "Older →")
        expect(page.get_by_label("Namespace")).to_have_value("team")  # the filter is kept
        seen += positions(page)
    assert seen == every and len(every) > 14
    pages = []
    while page.get_by_role("link", name="← Newer").count():
        pages.insert(0, positions(page))
        follow(page, "← Newer")
    assert positions(page) == every[:7]
    assert [p for chunk in [positions(page), *pages] for p in chunk] == every


def test_what_a_pusher_or_a_stranger_sent_shows_as_text(page: Page, web, story: Story) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, web, path="/history?type=login.failed")
    failed = page.locator("tr[data-type='login.failed']").first
    expect(failed.locator(".sentence")).to_have_text(
        f"sign-in as {SCRIPT} failed (API): wrong username or password"
    )
    failed.get_by_text("Details").click()
    expect(failed.locator("dd", has_text="onerror")).to_have_text(IMAGE_TAG)
    page.goto(f"{web.url}/history?type=manifest.pushed&repository={APP}")
    notes = page.locator("tr[data-type='manifest.pushed']").first
    notes.get_by_text("Details").click()
    expect(notes.locator("dd", has_text="note")).to_contain_text(SCRIPT)
    assert page.locator("main script, main img").count() == 0
    assert dialogs == []


def test_zh_cn_says_it_in_chinese(page: Page, web, story: Story) -> None:
    sign_in(page, web, path=f"/history?repository={APP}")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("heading", name="历史")).to_be_visible()
    expect(page.get_by_label("操作者")).to_be_visible()
    third = story.prod[2]
    expect(page.locator("tr[data-type='tag.deleted'] .sentence")).to_have_text(
        f"删除了标签 {APP}:prod（原指向 {third[:19]}…）"
    )
    second = story.prod[1]
    moved = page.locator("tr[data-type='tag.moved']", has_text=f"{APP}:prod").first
    expect(moved.locator(".sentence")).to_have_text(
        f"将标签 {APP}:prod 从 {second[:19]}… 移到 {third[:19]}…"
    )
    expect(moved.get_by_role("link", name="时间线")).to_be_visible()
    page.goto(f"{page.url.split('?')[0]}")
    screenshot(page, "history-zh-CN")


def test_bad_filters_get_a_readable_answer(page: Page, web, story: Story) -> None:
    open_as(page, web, "/history?type=no.such.kind&since=yesterday")
    expect(page.get_by_role("alert")).to_contain_text("Some filters are not right")
    expect(page.get_by_text("There is no event type of that name.")).to_be_visible()
    expect(page.get_by_text("Enter a date and time such as")).to_be_visible()
    expect(page.get_by_label("From (UTC)")).to_have_attribute("aria-invalid", "true")
    client = session_client(web, page)
    for path, status, text in [
        ("/history?type=no.such.kind", 400, "There is no event type of that name."),
        ("/history?until=2024-13-01T00:00", 400, "Enter a date and time"),
        ("/history?actor=" + "x" * 256, 400, "At most 255 characters."),
        ("/history?before=abc", 400, "This link to a page of events is broken."),
        ("/history?before=1&after=2", 400, "This link to a page of events is broken."),
        ("/history?limit=0", 400, "Rows per page must be 1 to 500."),
        ("/history?limit=x", 400, "Rows per page must be 1 to 500."),
        (f"/history/tags/{APP}/prod?after=-1", 400, "This link to a page of events is broken."),
        ("/history/tags/Not-A-Name/x", 404, "There is no tag of that name."),
        ("/history/tags/app", 404, "There is no tag of that name."),
        ("/history/tags/app/bad:tag", 404, "There is no tag of that name."),
    ]:
        answer = client.get(path)
        assert answer.status_code == status, (path, answer.status_code)
        assert "text/html" in answer.headers["content-type"]
        assert text in answer.text, path
    # a time zone given is taken; none given means UTC
    assert client.get("/history?since=2024-01-01T00:00:00%2B08:00").status_code == 200
    assert client.get("/history?since=2024-01-01").status_code == 200


def test_signed_out_goes_to_the_sign_in_page(page: Page, web) -> None:
    page.goto(f"{web.url}/history/tags/{APP}/prod")
    expect(page).to_have_url(re.compile(r"/login\?next=/history/tags/team/app/prod$"))


@pytest.mark.parametrize("path", ["/history", f"/history/tags/{APP}/prod", "/history?type=x"])
def test_the_pages_fit_375_px(page: Page, web, story: Story, path: str) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    sign_in(page, web, path=path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
