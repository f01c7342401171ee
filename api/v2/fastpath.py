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

from api.auth.guards import bearer_of
from api.services import Services
from api.v2.manifests import find_manifest, manifest_bytes
from api.v2.oci import API_VERSION
from domain.errors import RegistryError
from domain.names import is_valid_name

_MANIFEST = re.compile(r"/v2/(.+)/manifests/([^/]+)")
_PULL = ("pull",)
_VERSION = [(k.lower().encode(), v.encode()) for k, v in API_VERSION.items()]


class ManifestFastPath:
    def __init__(self, app: Any, services: Services) -> None:
        self.app = app
        self.services = services

    def __getattr__(self, name: str) -> Any:  # the app's state, for whoever holds this
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            if await self._answer(scope, send):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Any, send: Any) -> bool:
        raw = scope.get("raw_path") or b""
        if b"%" in raw or b"//" in raw or scope.get("query_string"):
            return False
        match = _MANIFEST.fullmatch(scope["path"])
        if match is None:
            return False
        name, reference = match.groups()
        if not is_valid_name(name):
            return False
        token = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                token = bearer_of(value.decode("latin-1"))
                break
        cache = self.services.token_cache
        grant = cache.grant(token) if token and cache is not None else None
        if grant is None or not grant.allows("repository", name, _PULL):
            return False
        scope["cyp_grant"] = grant  # as api.auth.current_grant does: the access log's user
        try:
            found = await find_manifest(self.services, name, reference)
            body = (
                await manifest_bytes(self.services, found.digest)
                if scope["method"] == "GET"
                else b""
            )
        except (RegistryError, psycopg.Error):  # e.g. unknown, or the database is down
            return False
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
