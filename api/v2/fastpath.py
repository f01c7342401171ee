"""The hottest request of a registry — a manifest GET or HEAD by a client whose token grants
the pull — answered below Litestar: no routing, no Request or Response objects, the same
bytes and headers as the /v2 handler would send (`api.v2.manifests`).

Anything else goes to the app unchanged and is answered there as usual: no token, a token
without the scope (the 401 challenge), an unknown manifest, a name that is not plain (escaped
characters, `//`), a database that fails (the app answers 503 for it, see api.errors and
api.availability). So this path adds no behaviour of its own; it only skips work.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from api.auth.guards import scope_grant
from api.auth.jwts import Grant
from api.services import Services
from api.v2.manifests import find_manifest, manifest_bytes
from api.v2.oci import API_VERSION
from domain.errors import RegistryError
from domain.names import is_valid_name

_MANIFEST = re.compile(r"/v2/(.+)/manifests/([^/]+)")
_PULL = ("pull",)
_VERSION = [(k.lower().encode(), v.encode()) for k, v in API_VERSION.items()]


def plain_path(scope: Any) -> str | None:
    """The path of a request the fast paths may answer: one whose raw path has no escaped
    character and no `//` (the handlers see the path as the client sent it, api.v2.routes),
    else None."""
    raw = scope.get("raw_path")
    if not raw or b"%" in raw or b"//" in raw or not raw.isascii():
        return None
    return raw.decode("ascii")


def granted(scope: Any, services: Services, name: str, actions: tuple[str, ...]) -> Grant | None:
    """The request's verified token if it grants `actions` on repository `name` (left in
    the scope as api.auth.current_grant does: the access log's user), else None."""
    grant = scope_grant(scope, services.token_cache)
    if grant is None or not grant.allows("repository", name, actions):
        return None
    return grant


class FastPath:
    """An ASGI wrapper that answers some requests itself and passes the rest to `app`."""

    methods: tuple[str, ...] = ()

    def __init__(self, app: Any, services: Services) -> None:
        self.app = app
        self.services = services

    def __getattr__(self, name: str) -> Any:  # the app's state, for whoever holds this
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in self.methods:
            if await self._answer(scope, receive, send):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Any, receive: Any, send: Any) -> bool:
        """Answer the request and say True, or say False (having sent nothing, read nothing)."""
        raise NotImplementedError


class ManifestFastPath(FastPath):
    methods = ("GET", "HEAD")

    async def _answer(self, scope: Any, receive: Any, send: Any) -> bool:
        path = plain_path(scope)
        if path is None or scope.get("query_string"):
            return False
        match = _MANIFEST.fullmatch(path)
        if match is None:
            return False
        name, reference = match.groups()
        if not is_valid_name(name) or granted(scope, self.services, name, _PULL) is None:
            return False
        pull = scope["method"] == "GET"  # a HEAD is no pull
        try:
            found = await find_manifest(self.services, name, reference)
            body = await manifest_bytes(self.services, found.digest) if pull else b""
        except (RegistryError, psycopg.Error):  # e.g. unknown, or the database is down
            return False
        if pull:  # answered: counted (domain.pulls)
            self.services.pulls.pulled(name, reference)
        headers = [
            (b"content-type", found.media_type.encode()),
            (b"content-length", str(found.size if not body else len(body)).encode()),
            (b"docker-content-digest", found.digest.encode()),
            (b"etag", f'"{found.digest}"'.encode()),
            *_VERSION,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True
