"""Docker token authentication for the tests' (and the bench's) HTTP clients.

`TokenAuth` works out, before a request leaves, which scope it needs from its path, gets a token
for that scope from the realm the registry's challenge names (once per scope, cached), and sends
`Authorization: Bearer ...` proactively: a streamed request body is sent once and never
replayed. Against a registry that answers `GET /v2/` with 200 (no authentication) it sends no
token at all. On a 401 a non-streaming request is retried once with a fresh token.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncGenerator, Generator, Iterable
from urllib.parse import unquote

import httpx

ADMIN = ("admin", "cyp-test-admin-pw")

_ENDPOINT = re.compile(
    r"^/v2/(?P<name>.+)/(?:manifests/[^/]*|blobs/uploads(?:/.*)?|blobs/[^/]*|tags/list|referrers/[^/]*)$"
)
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def scopes_for(method: str, path: str, params: httpx.QueryParams | None = None) -> tuple[str, ...]:
    """The token scopes a /v2 request needs (empty: none, e.g. `GET /v2/`)."""
    path = unquote(path)
    if path.rstrip("/") == "/v2/_catalog":
        return ("registry:catalog:*",)
    found = _ENDPOINT.match(path)
    if not found:
        return ()
    scopes = [f"repository:{found['name']}:pull,push,delete"]
    source = params.get("from") if params is not None and params.get("mount") else None
    if source and source != found["name"]:
        scopes.append(f"repository:{source}:pull")
    return tuple(scopes)


def parse_challenge(header: str) -> dict[str, str] | None:
    """`Bearer realm="...",service="...",scope="..."` as a dict (None if not a Bearer one)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return {key.lower(): value for key, value in _PARAM.findall(rest)}


def token_request(
    realm: str, service: str | None, scopes: Iterable[str], user: str, password: str
) -> httpx.Request:
    params = [("service", service)] if service else []
    params += [("scope", scope) for scope in scopes]
    return httpx.Request(
        "GET",
        realm,
        params=params,
        headers={"Authorization": httpx.BasicAuth(user, password)._auth_header},
    )


def token_of(response: httpx.Response) -> str:
    return token_and_expiry(response)[0]


def token_and_expiry(response: httpx.Response) -> tuple[str, float]:
    """The token of a token response and when (time.monotonic()) to stop using it."""
    if response.status_code != 200:
        raise httpx.HTTPStatusError(
            f"token request failed: {response.status_code} {response.text[:300]}",
            request=response.request,
            response=response,
        )
    body = response.json()
    lifetime = float(body.get("expires_in") or 60)
    # stop using it a little early (a third of a short lifetime, else 30 s)
    expires = time.monotonic() + lifetime - min(30.0, lifetime / 3)
    return body.get("token") or body["access_token"], expires


def fetch_token(
    base_url: str,
    user: str,
    password: str,
    scopes: Iterable[str],
    timeout: float = 30,
) -> str | None:
    """A token for `scopes` from the registry at `base_url` (None if it asks for none)."""
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        ping = client.get(f"{base_url.rstrip('/')}/v2/")
        if ping.status_code != 401:
            return None
        challenge = parse_challenge(ping.headers.get("www-authenticate", ""))
        if challenge is None or "realm" not in challenge:
            raise RuntimeError(f"no Bearer challenge: {ping.headers}")
        request = token_request(
            challenge["realm"], challenge.get("service"), scopes, user, password
        )
        return token_of(client.send(request))


def _streaming(request: httpx.Request) -> bool:
    return not isinstance(request.stream, httpx.ByteStream)


class TokenAuth(httpx.Auth):
    """Bearer tokens per scope, fetched with HTTP Basic credentials from the challenge's realm."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self._lock = threading.Lock()
        self._challenge: dict[str, dict[str, str] | None] = {}  # origin -> challenge or None
        self._tokens: dict[tuple[str, tuple[str, ...]], tuple[str, float]] = {}

    # A generator yielding (request, is_side_request) and receiving responses; the sync and
    # async wrappers read side responses (challenge, token) before handing them back.
    def _flow(self, request: httpx.Request) -> Generator:
        origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
        scopes = scopes_for(request.method, request.url.path, request.url.params)
        with self._lock:
            known = origin in self._challenge
            challenge = self._challenge.get(origin)
        if not known:
            ping = yield httpx.Request("GET", f"{origin}/v2/"), True
            found = parse_challenge(ping.headers.get("www-authenticate", ""))
            challenge = found if ping.status_code == 401 and found and "realm" in found else None
            with self._lock:
                self._challenge[origin] = challenge
        if challenge is not None:
            token = yield from self._token(origin, challenge, scopes, refresh=False)
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request, False
        if response.status_code != 401 or _streaming(request):
            return
        fresh = parse_challenge(response.headers.get("www-authenticate", ""))
        if fresh is None or "realm" not in fresh:
            return
        with self._lock:
            self._challenge[origin] = fresh
        token = yield from self._token(origin, fresh, scopes, refresh=True)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request, False

    def _token(
        self, origin: str, challenge: dict[str, str], scopes: tuple[str, ...], refresh: bool
    ) -> Generator:
        key = (origin, scopes)
        with self._lock:
            cached = None if refresh else self._tokens.get(key)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        request = token_request(
            challenge["realm"], challenge.get("service"), scopes, self.user, self.password
        )
        response = yield request, True
        token, expires = token_and_expiry(response)
        with self._lock:
            self._tokens[key] = (token, expires)
        return token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        flow = self._flow(request)
        try:
            sent, side = next(flow)
            while True:
                response = yield sent
                if side:
                    response.read()
                sent, side = flow.send(response)
        except StopIteration:
            return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._flow(request)
        try:
            sent, side = next(flow)
            while True:
                response = yield sent
                if side:
                    await response.aread()
                sent, side = flow.send(response)
        except StopIteration:
            return


class TokenCache:
    """Synchronous token cache for clients that are not httpx ones (the bench's http.client
    connections, wrk): `headers(method, path)` is the Authorization header a request needs
    (empty against a registry whose `GET /v2/` answers 200)."""

    def __init__(self, base_url: str, user: str, password: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.user, self.password, self.timeout = user, password, timeout
        self._challenge: dict[str, str] | None | bool = False  # False: not asked yet
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def challenge(self) -> dict[str, str] | None:
        if self._challenge is False:
            ping = httpx.get(f"{self.base_url}/v2/", timeout=self.timeout, trust_env=False)
            found = parse_challenge(ping.headers.get("www-authenticate", ""))
            self._challenge = found if ping.status_code == 401 and found else None
        return self._challenge  # type: ignore[return-value]

    def token(self, scopes: tuple[str, ...], refresh: bool = False) -> str | None:
        challenge = self.challenge()
        if challenge is None:
            return None
        with self._lock:
            cached = self._tokens.get(scopes)
            if cached and not refresh and time.monotonic() < cached[1]:
                return cached[0]
            request = token_request(
                challenge["realm"], challenge.get("service"), scopes, self.user, self.password
            )
            with httpx.Client(timeout=self.timeout, trust_env=False) as http:
                self._tokens[scopes] = token_and_expiry(http.send(request))
            return self._tokens[scopes][0]

    def headers(self, method: str, path: str, refresh: bool = False) -> dict[str, str]:
        url = httpx.URL(path)
        token = self.token(scopes_for(method, url.path, url.params), refresh)
        return {"Authorization": f"Bearer {token}"} if token else {}


def client(base_url: str, auth: tuple[str, str] = ADMIN, **kw) -> httpx.Client:
    """An httpx.Client on `base_url` authenticating as `auth` (admin by default)."""
    kw.setdefault("timeout", 30)
    return httpx.Client(base_url=base_url, auth=TokenAuth(*auth), **kw)
