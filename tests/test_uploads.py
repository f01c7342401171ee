"""Upload sessions on the real `cyp-registry serve`: abandoned ones are purged while it runs,
open ones are capped per user and per repository (429 with Retry-After), and an upload whose
client dies mid-PATCH is resumable from what reached the disk."""

from __future__ import annotations

import random
import subprocess
import sys

import httpx
import pytest

from tests.apiclient import call
from tests.apiclient import token_of as api_token_of
from tests.auth import ADMIN
from tests.images import digest_of
from tests.support import wait_until

pytestmark = pytest.mark.timeout(120)

MiB = 1024 * 1024
BOB = ("bob", "bob-password-1")


def v2_token(url: str, repo: str, who: tuple[str, str] = ADMIN) -> dict[str, str]:
    answer = httpx.get(
        f"{url}/token",
        params={"service": "cyp-registry", "scope": f"repository:{repo}:pull,push"},
        auth=who,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def open_session(url: str, repo: str, auth: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/v2/{repo}/blobs/uploads/", headers=auth)


def status_of(url: str, location: str, auth: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{url}{location}", headers=auth)


def assert_too_many(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["retry-after"].isdigit()
    assert answer.json()["errors"][0]["code"] == "TOOMANYREQUESTS"


def test_abandoned_uploads_are_purged_while_running(registry_factory):
    reg = registry_factory(
        CYP_UPLOAD_TTL="1", CYP_UPLOAD_PURGE_INTERVAL="0.2", CYP_MAX_UPLOADS_PER_USER="2"
    ).start()
    repo = "uploads/abandoned"
    auth = v2_token(reg.url, repo)
    left = [open_session(reg.url, repo, auth).headers["location"] for _ in range(2)]
    r = httpx.patch(
        f"{reg.url}{left[0]}",
        content=b"some bytes, then nothing",
        headers={**auth, "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 202, r.text
    uploads = reg.data_dir / "blobs" / "_uploads"
    assert len(list(uploads.iterdir())) == 2
    # Untouched for the TTL: purged while the registry runs (not only at its next start)...
    wait_until(lambda: all(status_of(reg.url, loc, auth).status_code == 404 for loc in left), 20)
    for location in left:
        r = status_of(reg.url, location, auth)
        assert r.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert list(uploads.iterdir()) == []
    # ...and forgotten by the process (their places under the cap of 2 are free again).
    for _ in range(2):
        assert open_session(reg.url, repo, auth).status_code == 202
    assert "Traceback" not in reg.log.read_text()


def test_open_upload_sessions_are_capped(registry_factory):
    reg = registry_factory(CYP_MAX_UPLOADS_PER_USER="3", CYP_MAX_UPLOADS_PER_REPOSITORY="4").start()
    admin_api = api_token_of(reg.url, *ADMIN)
    r = call(
        reg.url, "POST", "/api/users", admin_api, json={"username": BOB[0], "password": BOB[1]}
    )
    assert r.status_code == 201, r.text
    repo = "bob/app"
    admin, bob = v2_token(reg.url, repo), v2_token(reg.url, repo, BOB)

    opened = [open_session(reg.url, repo, admin) for _ in range(3)]
    assert [r.status_code for r in opened] == [202] * 3
    assert_too_many(open_session(reg.url, repo, admin))  # the user's cap
    assert_too_many(open_session(reg.url, "admin/other", v2_token(reg.url, "admin/other")))
    assert open_session(reg.url, repo, bob).status_code == 202  # bob's first: 4 in the repo
    assert_too_many(open_session(reg.url, repo, bob))  # the repository's cap
    # A monolithic upload needs a session too.
    blob = b"a whole blob in one POST"
    r = httpx.post(
        f"{reg.url}/v2/{repo}/blobs/uploads/",
        params={"digest": digest_of(blob)},
        content=blob,
        headers=bob,
    )
    assert_too_many(r)

    # A session that ends frees its place: cancelled...
    r = httpx.delete(f"{reg.url}{opened[0].headers['location']}", headers=admin)
    assert r.status_code == 204, r.text
    r = httpx.post(
        f"{reg.url}/v2/{repo}/blobs/uploads/",
        params={"digest": digest_of(blob)},
        content=blob,
        headers=bob,
    )
    assert r.status_code == 201, r.text  # opened and finished at once: its place is free again
    # ...or finished.
    r = httpx.put(
        f"{reg.url}{opened[1].headers['location']}",
        params={"digest": digest_of(b"chunk")},
        content=b"chunk",
        headers={**admin, "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    # Two of the repository's four places are free again (taken: admin's third and bob's).
    assert [open_session(reg.url, repo, bob).status_code for _ in range(2)] == [202, 202]
    assert_too_many(open_session(reg.url, repo, bob))
    assert "Traceback" not in reg.log.read_text()


# A client in its own process: it streams the PATCH body (seeded random bytes) slowly.
_CLIENT = """
import random, sys, time, httpx
url, token, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = random.Random(7).randbytes(size)

def body():
    for offset in range(0, size, 256 * 1024):
        yield data[offset : offset + 256 * 1024]
        time.sleep(0.02)

httpx.patch(url, content=body(), timeout=60, headers={
    "Authorization": token, "Content-Type": "application/octet-stream"})
"""


def test_an_upload_whose_client_died_mid_patch_resumes(registry):
    repo = "uploads/resumed"
    auth = v2_token(registry.url, repo)
    size = 24 * MiB + 4321
    data = random.Random(7).randbytes(size)
    location = open_session(registry.url, repo, auth).headers["location"]
    uploads = registry.data_dir / "blobs" / "_uploads"
    upload_id = location.rsplit("/", 1)[1]

    def written() -> int:
        found = list(uploads.glob(f"{upload_id}.*"))
        return found[0].stat().st_size if found else 0

    client = subprocess.Popen(
        [sys.executable, "-c", _CLIENT, registry.url + location, auth["Authorization"], str(size)]
    )
    try:
        wait_until(lambda: written() >= 3 * MiB, 30)  # streaming
    finally:
        client.kill()  # kill -9 mid-PATCH
        client.wait(10)
    assert written() < size

    # The client comes back: the upload's status says where to continue (the spec's resume).
    for _ in range(5):
        r = status_of(registry.url, location, auth)
        assert r.status_code == 204, r.text
        have = int(r.headers["range"].split("-")[1]) + 1
        assert 3 * MiB <= have < size
        r = httpx.patch(
            f"{registry.url}{r.headers['location']}",
            content=data[have:],
            headers={
                **auth,
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{have}-{len(data) - 1}",
            },
            timeout=60,
        )
        if r.status_code != 416:  # the dead PATCH was still writing: ask again
            break
    assert r.status_code == 202, r.text
    assert r.headers["range"] == f"0-{len(data) - 1}"
    r = httpx.put(
        f"{registry.url}{r.headers['location']}", params={"digest": digest_of(data)}, headers=auth
    )
    assert r.status_code == 201, r.text
    r = httpx.get(f"{registry.url}/v2/{repo}/blobs/{digest_of(data)}", headers=auth)
    assert r.status_code == 200 and r.content == data
    assert "Traceback" not in registry.log.read_text()
