"""The manifest fast path (api.v2.fastpath) answers exactly as the /v2 handler does: the same
status, bytes and headers for GET and HEAD by tag and by digest; everything it does not
answer (no token, a token without the scope, unknown manifests) reaches the handler."""

from __future__ import annotations

import httpx

from tests.auth import ADMIN
from tests.images import push_image

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.content) == (b.status_code, b.content)
    drop = {"date"}
    assert {k: v for k, v in a.headers.items() if k not in drop} == {
        k: v for k, v in b.headers.items() if k not in drop
    }


def test_fast_and_handler_answers_are_identical(module_registry) -> None:
    with module_registry.client() as client:
        digest = push_image(client, "fast/app", "v1")
        for reference in ("v1", digest, "missing", "sha256:" + "0" * 64):
            for method in ("GET", "HEAD"):
                path = f"/v2/fast/app/manifests/{reference}"
                # one request id for both: each answer echoes it (api.access_log)
                headers = {**ACCEPT, "X-Request-Id": f"{method}-{reference}"}
                fast = client.request(method, path, headers=headers)
                # a query string sends the request through Litestar and the handler
                handler = client.request(method, path + "?via=handler", headers=headers)
                _same(fast, handler)
                expected = 200 if reference in ("v1", digest) else 404
                assert fast.status_code == expected


def test_what_it_does_not_answer_reaches_the_handler(module_registry) -> None:
    url = module_registry.url
    with module_registry.client() as client:
        push_image(client, "fast/other", "v1")
    anonymous = httpx.get(f"{url}/v2/fast/other/manifests/v1")
    assert anonymous.status_code == 401 and "Bearer realm=" in anonymous.headers["www-authenticate"]
    # a token for another repository: the handler's insufficient_scope challenge
    grant = httpx.get(
        f"{url}/token",
        params={"service": "cyp-registry", "scope": "repository:fast/app:pull"},
        auth=ADMIN,
    )
    token = grant.json()["token"]
    wrong = httpx.get(
        f"{url}/v2/fast/other/manifests/v1", headers={"Authorization": f"Bearer {token}"}
    )
    assert wrong.status_code == 401
    assert 'error="insufficient_scope"' in wrong.headers["www-authenticate"]
