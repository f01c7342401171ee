"""Image management (「镜像管理」) in a real browser: find an image by search, open its details
and layers, copy the pull command, delete it after confirming; multi-arch platforms; what a
pusher wrote shows as text and runs nothing; a reader sees no delete button and a forged
delete is refused; pages of lists; the empty state's commands; zh-CN; 375 px wide."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Page, expect

from api.web.security import session_csrf
from tests.apiclient import call, token_of
from tests.auth import ADMIN
from tests.images import (
    OCI_MANIFEST,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
)
from tests.support import RegistryProcess, registry_process, wait_until
from tests.web.conftest import screenshot, session_client, sign_in

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
READER = ("rita", "rita-password-1")
NEWCOMER = ("nina", "nina-password-1")
MANY = 12  # tags of paged/many: three pages of five


@dataclass
class Pushed:
    frontend: str  # digest of team/web/frontend:1.0
    multi: str  # of the index team/multi:1.0


def _config(arch: str = "amd64", **extra: object) -> bytes:
    return json.dumps({"architecture": arch, "os": "linux", **extra}, sort_keys=True).encode()


def _index(client: httpx.Client, repo: str, tag: str) -> str:
    children = []
    for arch in ("amd64", "arm64"):
        layers = [b"base for every platform", f"{arch} layer".encode()]
        config = _config(arch, created="2024-03-01T00:00:00.123456789Z")
        digest = push_image(client, repo, None, layers, config)
        children.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(image_manifest(config, layers)),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    put_manifest(client, repo, tag, index, OCI_INDEX)
    return digest_of(index)


def _signature(client: httpx.Client, repo: str, subject: str) -> None:
    """A signature of `subject` through the referrers API (untagged)."""
    size = len(client.get(f"/v2/{repo}/manifests/{subject}").content)
    config, payload = b"{}", b"signature payload"
    push_blob(client, repo, config)
    push_blob(client, repo, payload)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIGNATURE,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": digest_of(config),
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": digest_of(payload),
                    "size": len(payload),
                }
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
        }
    ).encode()
    put_manifest(client, repo, digest_of(body), body)


@pytest.fixture(scope="module")
def module_registry(pg_admin_url, nats_url, tmp_path_factory) -> Iterator[RegistryProcess]:
    """This module's registry records pulls every half second (not 10 s), so the pages can
    show a pull a test made without waiting long."""
    data = tmp_path_factory.mktemp("reg") / "data"
    with registry_process(pg_admin_url, nats_url, data, CYP_PULL_FLUSH_SECONDS="0.5") as proc:
        yield proc


@pytest.fixture(scope="module")
def pushed(module_registry: RegistryProcess) -> Pushed:
    url = module_registry.url
    admin = token_of(url, *ADMIN)
    for who in (READER, NEWCOMER):
        answer = call(
            url,
            "POST",
            "/api/users",
            admin,
            json={"username": who[0], "password": who[1], "role": "user"},
        )
        assert answer.status_code == 201, answer.text
    with module_registry.client() as client:
        labels = {"org.opencontainers.image.title": "frontend", "team": "web"}
        frontend = push_image(
            client,
            "team/web/frontend",
            "1.0",
            [b"base layer", b"frontend layer", b"assets layer"],
            _config(created="2024-05-06T07:08:09Z", config={"Labels": labels}),
        )
        _signature(client, "team/web/frontend", frontend)
        multi = _index(client, "team/multi", "1.0")
        evil = {"evil": SCRIPT, "also": IMG}
        push_image(
            client,
            "team/xss",
            "1",
            [b"xss layer"],
            _config(IMG, created=SCRIPT, config={"Labels": evil}),
            annotations={"org.opencontainers.image.description": IMG, "note": SCRIPT},
        )
        for n in range(MANY):
            push_image(client, "paged/many", f"t{n:02}", [f"layer {n}".encode()])
    member = {"username": READER[0], "role": "reader"}
    answer = call(url, "POST", "/api/namespaces/team/members", admin, json=member)
    assert answer.status_code == 201, answer.text
    return Pushed(frontend, multi)


def _follow(page: Page, link) -> None:
    """Click a pager link and wait for its page (the next may have as many rows)."""
    before = page.url
    link.click()
    page.wait_for_url(lambda url: url != before)


def _rows(page: Page) -> list[str]:
    return [
        text.strip() for text in page.locator("main tbody tr td:nth-child(2)").all_inner_texts()
    ]


def test_find_an_image_open_it_copy_the_pull_command_and_delete_it(page: Page, web, pushed) -> None:
    with web.client() as client:  # pushed by this test, as a person would with docker
        digest = push_image(client, "team/doomed", "1", [b"doomed base", b"doomed app"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web.url)
    sign_in(page, web, path="/images")
    expect(page.get_by_role("heading", name="Image management")).to_be_visible()
    screenshot(page, "images-list-en")
    page.get_by_label("Search").fill("DOOMED")  # case-insensitive, as /api/images/search
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/images\?q=DOOMED"))
    assert _rows(page) == ["1"]
    row = page.locator("main tbody tr")
    expect(row).to_contain_text("team/doomed")
    expect(row.locator("code")).to_have_attribute("title", digest)
    row.get_by_role("link", name="1", exact=True).click()
    expect(page).to_have_url(f"{web.url}/images/team/doomed/1")
    expect(page.get_by_role("heading", name="team/doomed:1")).to_be_visible()
    layers = page.get_by_role("table", name="Layers (2)")
    expect(layers.locator("tbody tr")).to_have_count(2)
    expect(layers).to_contain_text(digest_of(b"doomed app")[:19])
    expect(page.locator("dl.facts")).to_contain_text(digest)
    pull = f"docker pull {web.host}/team/doomed:1"
    expect(page.locator("#pull-by-tag")).to_have_text(pull)
    page.locator("button[data-copy='#pull-by-tag']").click()
    expect(page.locator("button[data-copy='#pull-by-tag']")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == pull
    page.locator("button[data-copy='#pull-by-digest']").click()
    assert (
        page.evaluate("navigator.clipboard.readText()")
        == f"docker pull {web.host}/team/doomed@{digest}"
    )
    page.get_by_role("link", name="Delete this tag").click()
    expect(page.get_by_role("heading", name="Delete team/doomed:1?")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()  # a real confirm step: cancel keeps it
    expect(page).to_have_url(f"{web.url}/images/team/doomed/1")
    page.get_by_role("link", name="Delete this tag").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Deleted team/doomed:1.")
    page.get_by_label("Search").fill("doomed")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("status")).to_have_text("No image matches “doomed”.")
    admin = token_of(web.url, *ADMIN)
    assert call(web.url, "GET", "/api/images/team/doomed/1", admin).status_code == 404


def test_details_show_config_labels_layers_referrers_and_the_timeline_link(
    page: Page, web, pushed
) -> None:
    sign_in(page, web, path="/images/team/web/frontend/1.0")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text(pushed.frontend)
    expect(facts).to_contain_text("application/vnd.oci.image.manifest.v1+json")
    expect(facts).to_contain_text("May 6, 2024")
    expect(facts).to_contain_text("linux/amd64")
    expect(facts).to_contain_text("admin")
    expect(page.get_by_role("table", name="Labels")).to_contain_text(
        "org.opencontainers.image.title"
    )
    expect(page.get_by_role("table", name="Layers (3)").locator("tbody tr")).to_have_count(3)
    referrers = page.get_by_role("table", name=re.compile("Signatures, SBOMs and attestations"))
    expect(referrers).to_contain_text("Signature")
    expect(referrers).to_contain_text(SIGNATURE)
    timeline = page.get_by_role("link", name="Timeline of this tag")
    expect(timeline).to_have_attribute("href", "/history/tags/team/web/frontend/1.0")
    expect(page.locator("#pull-by-digest")).to_have_text(
        f"docker pull {web.host}/team/web/frontend@{pushed.frontend}"
    )
    screenshot(page, "images-details-en")
    page.get_by_role("link", name="team/web/frontend").click()
    expect(page.get_by_role("heading", name="team/web/frontend")).to_be_visible()
    tags = page.get_by_role("table", name="Tags")
    expect(tags).to_contain_text("1.0")
    screenshot(page, "images-repository-en")
    tags.get_by_role("link", name="1.0").click()
    expect(page).to_have_url(f"{web.url}/images/team/web/frontend/1.0")


def test_more_than_a_hundred_layers_are_a_link_away(page: Page, web, pushed) -> None:
    layers = [f"layer {n} of many".encode() for n in range(101)]
    with web.client() as client:
        push_image(client, "team/layered", "1", layers)
    sign_in(page, web, path="/images/team/layered/1")
    table = page.get_by_role("table", name="Layers (101)")
    expect(table.locator("tbody tr")).to_have_count(100)
    page.get_by_role("link", name="More layers").click()
    expect(page.get_by_role("heading", name="Layers of team/layered:1")).to_be_visible()
    rows = page.get_by_role("table", name="Layers").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(digest_of(layers[-1])[:19])
    page.goto(f"{web.url}/images/team/layered/1/-/layers?limit=40")
    seen = 0
    while True:
        seen += rows.count()
        following = page.get_by_role("link", name="Next page")
        if following.count() == 0:
            break
        _follow(page, following)
    assert seen == 101
    page.get_by_role("link", name="First page").click()
    expect(rows).to_have_count(40)


def test_pulls_are_counted_on_every_page(page: Page, web, pushed) -> None:
    with web.client() as client:
        push_image(client, "team/pulled", "1", [b"pulled layer"])
        for _ in range(3):
            answer = client.get("/v2/team/pulled/manifests/1", headers={"Accept": OCI_MANIFEST})
            assert answer.status_code == 200
    admin = token_of(web.url, *ADMIN)

    def api_count() -> int:
        answer = call(web.url, "GET", "/api/images/team/pulled/1", admin)
        return answer.json()["data"]["pull_count"]

    wait_until(lambda: api_count() == 3, timeout=15)
    sign_in(page, web, path="/images/team/pulled/1")
    facts = page.locator("dl.facts")
    expect(facts.locator("dt:has-text('Pulls') + dd")).to_have_text("3")
    expect(facts.locator("dt:has-text('Last pull') + dd")).not_to_have_text("never")
    page.goto(f"{web.url}/images?q=team/pulled")
    expect(page.locator("main tbody tr td").nth(4)).to_have_text("3")
    page.goto(f"{web.url}/repositories/team/pulled")
    expect(page.locator("dl.facts dt:has-text('Pulls') + dd")).to_have_text("3")
    expect(page.get_by_role("table", name="Tags").locator("tbody td").nth(3)).to_have_text("3")
    page.goto(f"{web.url}/images/team/web/frontend/1.0")  # never pulled
    expect(page.locator("dl.facts dt:has-text('Last pull') + dd")).to_have_text("never")


def test_a_multi_arch_index_shows_its_platforms_each_with_its_layers(
    page: Page, web, pushed
) -> None:
    sign_in(page, web, path="/images/team/multi/1.0")
    expect(page.get_by_role("heading", name="Platforms (2)")).to_be_visible()
    for arch in ("amd64", "arm64"):
        expect(page.get_by_role("heading", name=f"linux/{arch}")).to_be_visible()
        layers = page.get_by_role("table", name=f"linux/{arch}")
        expect(layers.locator("tbody tr")).to_have_count(2)
        expect(layers).to_contain_text(digest_of(f"{arch} layer".encode())[:19])
    expect(page.locator("dl.facts").first).to_contain_text(OCI_INDEX)
    expect(page.locator("dl.facts").first).to_contain_text("Mar 1, 2024")  # nanoseconds read
    page.goto(f"{web.url}/images/team/multi/1.0/-/platforms?limit=1")
    expect(page.locator("section.platform")).to_have_count(1)
    page.get_by_role("link", name="Next page").click()
    expect(page.get_by_role("heading", name="linux/arm64")).to_be_visible()
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)


def test_what_a_pusher_wrote_is_shown_as_text_and_runs_nothing(page: Page, web, pushed) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, web, path="/images/team/xss/1")
    labels = page.get_by_role("table", name="Labels")
    expect(labels.get_by_text(SCRIPT, exact=True)).to_be_visible()
    expect(labels.get_by_text(IMG, exact=True)).to_be_visible()
    annotations = page.get_by_role("table", name="Annotations")
    expect(annotations.get_by_text(IMG, exact=True)).to_be_visible()
    expect(annotations.get_by_text(SCRIPT, exact=True)).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text(f"linux/{IMG}")  # the config's architecture
    expect(facts).to_contain_text(SCRIPT)  # its creation time, which is not one
    assert page.locator("main img, main script").count() == 0
    page.goto(f"{web.url}/images?q=xss")
    expect(page.locator("main tbody tr")).to_have_count(1)
    page.wait_for_load_state("load")
    assert dialogs == []


def test_a_reader_sees_no_delete_button_and_a_forged_delete_is_refused(
    page: Page, web, pushed
) -> None:
    sign_in(page, web, READER, "/images/team/web/frontend/1.0")
    expect(page.get_by_role("heading", name="team/web/frontend:1.0")).to_be_visible()
    expect(page.get_by_role("link", name="Delete this tag")).to_have_count(0)
    page.goto(f"{web.url}/repositories/team/web/frontend")
    expect(page.get_by_role("heading", name="team/web/frontend")).to_be_visible()
    expect(page.get_by_role("link", name="Delete this repository")).to_have_count(0)
    forger = session_client(web, page)
    csrf = session_csrf(forger.cookies["cyp_session"])
    confirm = forger.get("/images/team/web/frontend/1.0/-/delete")
    assert (
        confirm.status_code == 403 and "You may not delete from team/web/frontend." in confirm.text
    )
    for path in [
        "/images/team/web/frontend/1.0/-/delete",
        "/repositories/team/web/frontend/-/delete",
    ]:
        refused = forger.post(path, data={"csrf": csrf})
        assert refused.status_code == 403, path
        assert "text/html" in refused.headers["content-type"]
        assert "You may not delete from team/web/frontend." in refused.text
        bare = forger.post(path, data={})  # and without the token, whoever sends it
        assert bare.status_code == 403 and "This form expired" in bare.text, path
    unseen = forger.post("/images/paged/many/t00/-/delete", data={"csrf": csrf})
    assert unseen.status_code == 404  # not even readable: as /api, it does not exist
    admin = token_of(web.url, *ADMIN)
    assert call(web.url, "GET", "/api/images/team/web/frontend/1.0", admin).status_code == 200
    assert call(web.url, "GET", "/api/images/paged/many/t00", admin).status_code == 200
    page.goto(f"{web.url}/images")  # a reader's list: what /api shows them, and no more
    expect(page.locator("main tbody tr").first).to_be_visible()
    assert not any("paged/many" in text for text in page.locator("main tbody").all_inner_texts())
    options = page.locator("#namespace option").all_inner_texts()
    assert "team" in options and "paged" not in options


def test_a_new_user_is_told_the_commands_for_this_host(page: Page, web, pushed) -> None:
    sign_in(page, web, NEWCOMER, "/images")
    expect(page.get_by_role("heading", name="No images yet")).to_be_visible()
    expect(page.locator("#push-commands")).to_have_text(
        f"docker login {web.host}\n"
        f"docker tag myapp:latest {web.host}/nina/myapp:latest\n"
        f"docker push {web.host}/nina/myapp:latest"
    )
    screenshot(page, "images-empty-en")


def test_lists_go_page_by_page_with_the_api_cursors(page: Page, web, pushed) -> None:
    sign_in(page, web, path="/images")
    page.goto(f"{web.url}/images?namespace=paged&limit=5")
    seen: list[str] = []
    for expected in (5, 5, 2):
        expect(page.locator("main tbody tr")).to_have_count(expected)
        seen += _rows(page)
        following = page.get_by_role("link", name="Next page")
        if expected == 2:
            expect(following).to_have_count(0)
        else:
            _follow(page, following)
    assert seen == [f"t{n:02}" for n in range(MANY)]
    _follow(page, page.get_by_role("link", name="First page"))
    assert _rows(page) == seen[:5]
    # sorted by size, largest first, within the namespace the select names
    page.get_by_label("Sort by").select_option("size")
    page.get_by_label("Order").select_option("desc")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"sort=size"))
    expect(page.get_by_label("Namespace")).to_have_value("paged")
    # a repository's tags, a keyed page at a time
    page.goto(f"{web.url}/repositories/paged/many?limit=5")
    tags: list[str] = []
    while True:
        tags += [t.strip() for t in page.locator("main tbody tr td:first-child").all_inner_texts()]
        following = page.get_by_role("link", name="Next page")
        if following.count() == 0:
            break
        _follow(page, following)
    assert tags == [f"t{n:02}" for n in range(MANY)]
    page.goto(f"{web.url}/repositories?namespace=paged")
    expect(page.get_by_role("table", name="Repositories")).to_contain_text("paged/many")
    expect(
        page.get_by_role("table", name="Repositories").locator("tbody tr td").nth(2)
    ).to_have_text(str(MANY))


def test_deleting_a_repository_after_confirming(page: Page, web, pushed) -> None:
    with web.client() as client:
        for tag in ("1", "2"):
            push_image(client, "gone/app", tag, [f"gone {tag}".encode()])
    sign_in(page, web, path="/repositories/gone/app")
    expect(page.get_by_role("table", name="Tags").locator("tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Delete this repository").click()
    expect(page.get_by_role("heading", name="Delete the repository gone/app?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Its 2 tags")
    page.get_by_role("button", name="Delete the repository").click()
    expect(page).to_have_url(f"{web.url}/repositories?deleted=gone/app")
    expect(page.get_by_role("status")).to_have_text("Deleted gone/app.")
    expect(page.get_by_role("table", name="Repositories")).not_to_contain_text("gone/app")
    page.goto(f"{web.url}/repositories/gone/app")
    expect(page.get_by_role("alert")).to_have_text(
        "There is no repository gone/app, or you may not see it."
    )


def test_in_chinese(page: Page, web, pushed) -> None:
    sign_in(page, web, path="/images")
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("heading", name="镜像管理")).to_be_visible()
    expect(page.get_by_role("link", name="镜像管理")).to_have_attribute("aria-current", "page")
    screenshot(page, "images-list-zh-CN")
    page.goto(f"{web.url}/images/team/web/frontend/1.0")
    expect(page.get_by_role("heading", name="拉取")).to_be_visible()
    expect(page.get_by_role("table", name="镜像层（3）")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("2024年5月6日")
    screenshot(page, "images-details-zh-CN")
    page.goto(f"{web.url}/repositories/team/web/frontend")
    expect(page.get_by_role("link", name="删除此仓库")).to_be_visible()
    screenshot(page, "images-repository-zh-CN")
    page.goto(f"{web.url}/images/team/web/frontend/nothing-here")
    expect(page.get_by_role("alert")).to_have_text(
        "镜像 team/web/frontend:nothing-here 不存在，或您无权查看。"
    )
    page.goto(f"{web.url}/images?sort=bogus")
    expect(page.get_by_role("alert")).to_have_text("地址中“sort”的值无效。")
    page.get_by_role("button", name="English").click()


def test_pages_fit_a_375_px_phone(page: Page, web, pushed) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    sign_in(page, web, path="/images")
    for path in [
        "/images",
        "/repositories",
        "/repositories/team/web/frontend",
        "/images/team/multi/1.0",
    ]:
        page.goto(f"{web.url}{path}")
        expect(page.locator("main h1")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path


BAD = [
    ("/images?sort=bogus", 400),
    ("/images?order=up", 400),
    ("/images?limit=0", 400),
    ("/images?limit=501", 400),
    ("/images?cursor=not-a-cursor", 400),
    ("/images?q=%00", 400),
    ("/repositories?sort=size", 400),
    ("/repositories?cursor=eyJ4Ijoy", 400),
    ("/repositories/team/web/frontend?cursor=bad", 400),
    ("/images/team/web/frontend/1.0/-/layers?cursor=bad", 400),
    ("/images/team/web/frontend/1.0/-/layers?platform=sha256:00", 404),
    ("/images/team/web/frontend/nope", 404),
    ("/images/no/such/repository/1", 404),
    ("/images/Not_A_Name/1", 404),
    ("/images/team/web/frontend/1.0/-/whatever", 404),
    ("/repositories/no/such", 404),
    ("/repositories/UPPER/case", 404),
    ("/repositories/team/web/frontend/-/whatever", 404),
]


def test_bad_input_gets_a_readable_page(page: Page, web, pushed) -> None:
    sign_in(page, web, path="/images")
    client = session_client(web, page)
    for path, status in BAD:
        answer = client.get(path)
        assert answer.status_code == status, (path, answer.text[-500:])
        assert "text/html" in answer.headers["content-type"], path
        assert 'role="alert"' in answer.text, path
