"""The requests of a push answered below Litestar, as the manifest fast path answers pulls
(`api.v2.fastpath`): a blob HEAD, an upload's POST (plain, or with `?digest=` and the whole
blob as its body), PATCH and PUT, by a client whose token grants them. They run the /v2
handlers' own code (`api.v2.blobs`: same checks, same commands and waits, same answers) and
their errors are answered as the handlers' are (`api.v2.routes.refusal`, `api.errors`); what
is skipped is Litestar's routing, its Request and its middleware.

The fast path takes a request only when it is sure the handler would run exactly this code:
a plain path (no escaped character, no `//`) that the /v2 routes give to one of those
handlers, a valid repository name, a token in the scope that grants the action, the query a
client sends (none, or just `digest=`; a mount goes to the handler), at most one
Content-Length (all digits) and one Content-Range. Anything else reaches the app unchanged:
a missing or insufficient token (its 401 challenge), an odd query or header. Deciding reads
neither the body nor the database, so a request that falls through is untouched.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from litestar import Response
from litestar.exceptions import InternalServerException

from api.auth.guards import PULL, PUSH, scope_caller
from api.errors import v2_failure
from api.v2 import blobs
from api.v2.fastpath import FastPath, granted, plain_path
from api.v2.routes import REFUSED, refusal, route
from domain.caller import Caller
from domain.names import is_valid_name

# The query of a monolithic POST or a closing PUT: the digest alone (':' maybe escaped), so
# it means here exactly what Litestar's query parser makes of it.
_DIGEST_QUERY = re.compile(rb"digest=((?:[A-Za-z0-9._=:-]|%3[Aa])+)")
_NUMBER = re.compile(rb"[0-9]+")
_BODY_HEADERS = (b"content-length", b"content-range")
_ACTIONS = {"HEAD": (PULL,), "POST": (PUSH,), "PATCH": (PUSH,), "PUT": (PUSH,)}
# the handlers whose work the fast path does, by method
_HANDLERS = {"HEAD": blobs.head, "POST": blobs.start, "PATCH": blobs.patch, "PUT": blobs.put}


def _digest(query: bytes) -> str | None:
    match = _DIGEST_QUERY.fullmatch(query)
    if match is None:
        return None
    return match[1].decode().replace("%3A", ":").replace("%3a", ":")


def _body_headers(scope: Any) -> dict[bytes, str] | None:
    """Content-Length and Content-Range as the handler reads them; None if either is there
    twice, or Content-Length is no plain number (Litestar refuses that its own way)."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in _BODY_HEADERS:
            if key in found or (key == b"content-length" and not _NUMBER.fullmatch(value)):
                return None
            found[key] = value.decode("latin-1")
    return found


async def _chunks(receive: Any) -> AsyncIterator[bytes]:
    """The request body, as Litestar's `Request.stream()` gives it."""
    while True:
        event = await receive()
        if event["type"] == "http.request":
            if body := event.get("body", b""):
                yield body
            if not event.get("more_body", False):
                return
        elif event["type"] == "http.disconnect":  # e.g. a stalled body ended by the server
            raise InternalServerException("client disconnected prematurely")


class Plan(NamedTuple):
    """A request the fast path takes, as the handler would read it."""

    method: str
    name: str
    params: dict[str, str]  # the route's: name, and digest or upload_id
    digest: str | None  # the query's
    headers: dict[bytes, str]  # Content-Length, Content-Range


def plan(scope: Any) -> Plan | None:
    """What the request asks, if the fast path may answer it (its token aside); else None.
    Reads only the scope."""
    method = scope["method"]
    if method not in _ACTIONS:
        return None
    path = plain_path(scope)
    if path is None or not path.startswith("/v2/"):
        return None
    query = scope.get("query_string") or b""
    digest = _digest(query) if query else None
    if (query and digest is None) or (query and method in ("HEAD", "PATCH")):
        return None
    if method == "PUT" and digest is None:
        return None
    params = _route(path[len("/v2/") :], method)
    if params is None or not is_valid_name(params["name"]):
        return None
    headers = _body_headers(scope)
    if headers is None:
        return None
    return Plan(method, params["name"], params, digest, headers)


class BlobFastPath(FastPath):
    methods = tuple(_ACTIONS)

    async def _answer(self, scope: Any, receive: Any, send: Any) -> bool:
        taken = plan(scope)
        if taken is None:
            return False
        method, name = taken.method, taken.name
        grant = granted(scope, self.services, name, _ACTIONS[method])
        if grant is None:
            return False  # the handler's 401 and its challenge
        caller = scope_caller(scope, self.services.trusted_proxies, grant)
        try:
            response = await self._run(taken, caller, receive)
        except REFUSED as exc:
            response = refusal(exc)
        except Exception as exc:  # what Litestar's exception handlers would answer
            response = v2_failure(self.services, method, scope["path"], exc)
        await response.to_asgi_response(None, None)(scope, receive, send)  # type: ignore[arg-type]
        return True

    async def _run(self, taken: Plan, caller: Caller, receive: Any) -> Response[Any]:
        services, name, params = self.services, taken.name, taken.params
        if taken.method == "HEAD":
            return await blobs.head_blob(services, name, params["digest"])
        headers = taken.headers
        body = blobs.Body(
            _chunks(receive), headers.get(b"content-range"), headers.get(b"content-length")
        )
        if taken.method == "POST":
            return await blobs.open_upload(services, name, caller, taken.digest, body)
        upload_id = params["upload_id"]
        if taken.method == "PATCH":
            return await blobs.append_chunk(services, name, upload_id, body)
        return await blobs.close_upload(services, name, upload_id, taken.digest, body, caller)


def _route(path: str, method: str) -> dict[str, str] | None:
    """The parameters of the /v2 route `path` takes, if its handler is one of ours."""
    found = route(path)
    if found is None or found[0].get(method) is not _HANDLERS[method]:
        return None
    return found[1]
