"""The front door on the real server: every /api answer is the envelope (unknown paths 404,
wrong methods 405 with Allow), the /api documents and a docs page that loads nothing from
another origin, HEAD /health, a cross-repository mount by exactly the challenged scopes, and
an events estimate that is right on a young store."""

from __future__ import annotations

import asyncio
import re
import uuid
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import psycopg
import pytest
import yaml

from projections import system
from tests.apiclient import call, refused, token_of
from tests.auth import ADMIN
from tests.images import push_blob, push_image
from tests.world import user

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


# -- every /api answer is the envelope ----------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "path",
    [
        "/api/nope",  # one segment: was Litestar's HTML page (GET) and 405 (other methods)
        "/api/a/b/c",
        "/api/users/alice/nope",
        "/api/docs/nope",
        "/api/docs/assets/index.html",  # of the bundle, but not served
        "/api/openapi.yml",
    ],
)
def test_an_unknown_api_path_is_404_in_the_envelope(module_registry, method, path) -> None:
    answer = call(module_registry.url, method, path)
    refused(answer, 404, "NOT_FOUND")
    assert answer.headers["content-type"].startswith("application/json")


def test_an_unknown_api_path_answers_head_with_404(module_registry) -> None:
    answer = call(module_registry.url, "HEAD", "/api/nope")
    assert answer.status_code == 404 and answer.content == b""


@pytest.mark.parametrize(
    "method,path,allowed",
    [
        ("PUT", "/api/images", {"GET"}),
        ("POST", "/api/system/info", {"GET"}),
        ("DELETE", "/api/users", {"GET", "POST"}),
        ("POST", "/api/images/team/web/1.0", {"GET", "DELETE"}),  # /api/images/{rest:path}
        ("GET", "/api/auth/login", {"POST"}),
        ("POST", "/api/docs", {"GET"}),
        ("PATCH", "/api/openapi.json", {"GET"}),
        ("DELETE", "/api/openapi.yaml", {"GET"}),
        ("PUT", "/api/docs/assets/swagger-ui.css", {"GET"}),
    ],
)
def test_a_wrong_method_is_405_in_the_envelope_with_allow(
    module_registry, method, path, allowed
) -> None:
    answer = call(module_registry.url, method, path)
    refused(answer, 405, "UNSUPPORTED")
    allow = {m.strip() for m in answer.headers["allow"].split(",")}
    assert allowed <= allow and method not in allow, allow


def test_other_paths_keep_their_answers(module_registry) -> None:
    """/v2 keeps the OCI error form; /token the envelope; other paths are the web UI's, whose
    unknown pages are a readable page."""
    with module_registry.client() as client:
        oci = client.get("/v2/conf/x/unknown/endpoint")
    assert oci.status_code == 404 and list(oci.json()) == ["errors"]
    refused(call(module_registry.url, "DELETE", "/token"), 405, "UNSUPPORTED")
    page = call(module_registry.url, "POST", "/nope")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text


# -- the documents and the docs page ------------------------------------------------------------
def test_openapi_yaml_is_the_json_document(module_registry) -> None:
    as_json = call(module_registry.url, "GET", "/api/openapi.json")
    as_yaml = call(module_registry.url, "GET", "/api/openapi.yaml")
    assert as_yaml.status_code == 200, as_yaml.text
    assert "yaml" in as_yaml.headers["content-type"] or "openapi" in as_yaml.headers["content-type"]
    document = yaml.safe_load(as_yaml.text)
    assert document == as_json.json()
    assert "/api/images" in document["paths"]


class _References(HTMLParser):
    """Every URL an element of a page loads or links to."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "data") and value:
                self.found.append((tag, name, value))


CONTENT_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/api/docs", "/api"])
def test_the_docs_page_loads_everything_from_our_origin(module_registry, page) -> None:
    base = module_registry.url + page
    answer = httpx.get(base, timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    parser = _References()
    parser.feed(html)
    assets = {value for tag, _, value in parser.found if tag in ("script", "link", "img")}
    assert len(assets) >= 4, parser.found  # the style, two scripts, the icon
    for _, _, value in parser.found:
        target = urlsplit(urljoin(base, value))
        assert (target.scheme, target.netloc) == ("http", module_registry.host), value
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", html)  # no other origin in styles
    for value in assets:
        fetched = httpx.get(urljoin(base, value), timeout=30)
        assert fetched.status_code == 200, value
        suffix = value[value.rfind(".") :]
        assert fetched.headers["content-type"].split(";")[0] == CONTENT_TYPES[suffix], value
        assert fetched.content, value
        if suffix == ".css":  # its images and fonts are inline, none from elsewhere
            targets = re.findall(r"url\(\s*['\"]?([^'\")]*)", fetched.text)
            assert targets and all(t.startswith("data:") for t in targets), targets
    # Swagger UI on the document inline: no request of the page's own for it either.
    assert '"openapi":"3.1' in html.replace(" ", "")


# -- HEAD /health -----------------------------------------------------------------------------
def _head_like_get(url: str) -> httpx.Response:
    got = httpx.get(f"{url}/health", timeout=30)
    head = httpx.head(f"{url}/health", timeout=30)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert head.headers["content-length"] == str(len(got.content)) == got.headers["content-length"]
    assert head.headers["content-type"] == got.headers["content-type"]
    return got


def test_head_health_answers_like_get(module_registry) -> None:
    got = _head_like_get(module_registry.url)
    assert got.status_code == 200 and got.json()["data"]["status"] == "healthy"
    allow = httpx.post(f"{module_registry.url}/health", timeout=30).headers["allow"]
    assert {"GET", "HEAD"} <= {m.strip() for m in allow.split(",")}


def test_head_health_answers_503_like_get_when_nats_is_down(own_nats, registry_factory) -> None:
    # no relay lag in the answer: its seconds would change between the two requests
    reg = registry_factory(nats=own_nats.url, CYP_RELAY_MAX_LAG="0").start()
    own_nats.stop()
    try:
        got = _head_like_get(reg.url)
        assert got.status_code == 503 and got.json()["data"]["failed"] == ["nats"]
    finally:
        own_nats.restart()  # the registry's stream is deleted at teardown


# -- a cross-repository mount by the challenged scopes -------------------------------------------
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def _challenge(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 401, answer.text
    header = answer.headers["www-authenticate"]
    assert header.startswith("Bearer ")
    return dict(_CHALLENGE.findall(header))


def _token(challenge: dict[str, str], auth: tuple[str, str], split: bool) -> str:
    """A token for exactly the challenged scopes: one `scope` parameter as the challenge
    says it (space-separated), or one parameter per scope (what docker sends)."""
    scopes = challenge["scope"].split(" ") if split else [challenge["scope"]]
    params = [("service", challenge["service"]), *(("scope", s) for s in scopes)]
    answer = httpx.get(challenge["realm"], params=params, auth=auth, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


@pytest.mark.parametrize("split", [False, True], ids=["one-scope-parameter", "one-per-scope"])
def test_a_mount_by_the_challenged_scopes_mounts(module_registry, split) -> None:
    url, suffix = module_registry.url, uuid.uuid4().hex[:8]
    source, target = f"mount/src-{suffix}", f"mount/dst-{suffix}"
    data = f"a layer to mount {suffix}".encode()
    with module_registry.client() as client:
        digest = push_blob(client, source, data)
    uploads = f"{url}/v2/{target}/blobs/uploads/"
    params = {"mount": digest, "from": source}
    challenge = _challenge(httpx.post(uploads, params=params, timeout=30))
    assert challenge["scope"] == f"repository:{target}:pull,push repository:{source}:pull"
    assert challenge["realm"] == f"{url}/token"
    bearer = {"Authorization": f"Bearer {_token(challenge, ADMIN, split)}"}
    mounted = httpx.post(uploads, params=params, headers=bearer, timeout=30)
    assert mounted.status_code == 201, mounted.text
    assert mounted.headers["location"] == f"/v2/{target}/blobs/{digest}"
    assert mounted.headers["docker-content-digest"] == digest
    pulled = httpx.get(f"{url}/v2/{target}/blobs/{digest}", headers=bearer, timeout=30)
    assert pulled.status_code == 200 and pulled.content == data


def test_a_mount_from_what_the_caller_may_not_read_uploads_instead(module_registry) -> None:
    """The challenge names the source, but /token grants only what the caller may do: a
    user who may not pull the source gets an upload (202), and learns nothing of it."""
    url, suffix = module_registry.url, uuid.uuid4().hex[:6]
    admin = token_of(url, *ADMIN)
    password = f"pw-{suffix}-long"
    user(module_registry, admin, f"mounter{suffix}", password)
    data = f"a private layer {suffix}".encode()
    with module_registry.client() as client:
        digest = push_blob(client, f"private{suffix}/app", data)
    uploads = f"{url}/v2/mounter{suffix}/app/blobs/uploads/"
    params = {"mount": digest, "from": f"private{suffix}/app"}
    challenge = _challenge(httpx.post(uploads, params=params, timeout=30))
    assert f"repository:private{suffix}/app:pull" in challenge["scope"].split(" ")
    token = _token(challenge, (f"mounter{suffix}", password), split=False)
    answer = httpx.post(
        uploads, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"].startswith(f"/v2/mounter{suffix}/app/blobs/uploads/")


@pytest.mark.parametrize(
    "params",
    [
        {"from": "some/source"},  # no mount: an ordinary upload
        {"mount": "sha256:" + "0" * 64, "from": 'bad" name'},  # never into the header
        {"mount": "sha256:" + "0" * 64, "from": "mount/same"},  # the target itself
        {"mount": "sha256:" + "0" * 64},  # no source to name
    ],
)
def test_other_upload_challenges_name_the_target_only(module_registry, params) -> None:
    answer = httpx.post(
        f"{module_registry.url}/v2/mount/same/blobs/uploads/", params=params, timeout=30
    )
    assert _challenge(answer)["scope"] == "repository:mount/same:push"


# -- events_estimate on a young store -------------------------------------------------------------
def _events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM registry_events").fetchone()[0]


def test_events_estimate_counts_a_young_store(registry) -> None:
    with registry.client() as client:
        for tag in ("a", "b", "c"):
            push_image(client, "young/store", tag, layers=[tag.encode()])
    token = token_of(registry.url, *ADMIN)
    database = registry.env["CYP_DATABASE_URL"]
    before = _events(database)
    info = call(registry.url, "GET", "/api/system/info", token).json()["data"]["event_store"]
    after = _events(database)
    assert before > 10  # a few pushes and sign-ins: no ANALYZE has run yet (reltuples -1 or 0)
    assert before <= info["events_estimate"] <= after, (before, info, after)
    assert info["head_position"] >= info["events_estimate"]


def test_events_estimate_stays_cheap_and_close_at_scale(database_url) -> None:
    """Beyond EXACT_BELOW the answer is Postgres' statistics, scaled to the table's size now
    (a log grown since the last ANALYZE is not undercounted); before any ANALYZE it is at
    least EXACT_BELOW."""
    cap = system.EXACT_BELOW
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE big_events (notification_id bigint PRIMARY KEY, state bytea)"
            " WITH (autovacuum_enabled = false)"  # this test says when statistics are taken
        )

        def add(start: int, count: int) -> None:
            conn.execute(
                "INSERT INTO big_events SELECT g, decode(md5(g::text), 'hex')"
                " FROM generate_series(%s::bigint, %s::bigint) g",
                (start, start + count - 1),
            )

        async def estimate() -> system.EventStore:
            async with await psycopg.AsyncConnection.connect(database_url) as aconn:
                return await system.event_store(aconn, "big_events")

        add(1, cap - 1)
        assert asyncio.run(estimate()).events == cap - 1  # counted, no statistics yet
        add(cap, 2 * cap + 1)  # 3 * cap rows, never analyzed
        assert asyncio.run(estimate()).events == cap  # at least what a bounded count saw
        conn.execute("ANALYZE big_events")
        assert abs(asyncio.run(estimate()).events - 3 * cap) <= 3 * cap * 0.02
        add(3 * cap + 1, 3 * cap)  # doubled since the ANALYZE
        found = asyncio.run(estimate())
        assert abs(found.events - 6 * cap) <= 6 * cap * 0.05, found
        assert found.head == 6 * cap
