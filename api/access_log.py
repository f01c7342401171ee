"""The access log: one line per HTTP request, written when its answer is done — time (the
record's), client, user, method, path, status, bytes, duration and request id.

A pure ASGI middleware around everything, the manifest fast path (`api.fastpath`) included.
The request id is the client's `X-Request-Id` when it is sane (1-128 characters of
`A-Za-z0-9._:@/+=-`), else a fresh one; the answer carries it back. The user is the
authenticated subject where the request proved one (the /v2 token's `sub` that the guards or
the fast path found, an /api session's user), else `-`. No secret is logged: no header at all,
and a query parameter whose name looks like one (password, token, secret, ...) shows `***`.
The client is the connection's peer, or what a trusted proxy says (`api.proxies`).

Cheap when on (a few microseconds a request, most of it the logging module's), cheaper off
(CYP_LOG_LEVEL above info): then the line is never built.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from api.proxies import TrustedProxies

log = logging.getLogger("cyp_registry.access")

# Scope keys. This request's id (for whoever wants to name it, e.g. in an error).
REQUEST_ID = "cyp_request_id"
# Set by the HTTP protocol when it answered itself instead of the app: (status, body bytes)
# of what it sent (408 to a client whose body stopped arriving, cyp_registry.http_protocol).
SERVER_ANSWER = "cyp_server_answer"
# Where the guards and the fast path leave what they verified (api.auth).
_GRANT = "cyp_grant"
_API_CALLER = "cyp_api_caller"
_CLIENT = "cyp_client"

_SANE_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
_SECRET_NAME = re.compile(r"pass|secret|token|key|sig|cred|auth|code|session", re.IGNORECASE)
_UNSAFE = re.compile(r"[^\x21-\x7e]")  # spaces, controls, non-ASCII: escaped, one line stays one


def _escaped(text: str) -> str:
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), text)


def redacted_query(raw: bytes) -> str:
    """The query string with the values of secret-looking parameters replaced by `***`."""
    if not raw:
        return ""
    parts = []
    for part in raw.decode("latin-1").split("&"):
        name, eq, _value = part.partition("=")
        parts.append(f"{name}=***" if eq and _SECRET_NAME.search(name) else part)
    return _escaped("&".join(parts))


def request_id(headers: list[tuple[bytes, bytes]]) -> bytes:
    for key, value in headers:
        if key == b"x-request-id":
            if _SANE_ID.fullmatch(value):
                return value
            break
    return os.urandom(8).hex().encode()


def user_of(scope: dict[str, Any]) -> str:
    caller = scope.get(_API_CALLER)
    if caller is not None:
        return caller.actor
    grant = scope.get(_GRANT)
    if grant is not None and grant.subject:
        return grant.subject
    return "-"


class AccessLog:
    def __init__(self, app: Any, proxies: TrustedProxies | None = None) -> None:
        self.app = app
        self.proxies = proxies

    def __getattr__(self, name: str) -> Any:  # the app's state, for whoever holds this
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope["headers"])
        scope[REQUEST_ID] = rid.decode()
        answer = [0, 0]  # status, body bytes

        async def send_logged(message: Any) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", rid)]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                answer[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        except BaseException:
            answer[0] = answer[0] or 500  # what uvicorn answers for it
            raise
        finally:
            if log.isEnabledFor(logging.INFO):
                self._write(scope, answer, time.perf_counter() - started)

    def _client(self, scope: Any) -> str:
        found = scope.get(_CLIENT)
        if found is not None:
            return found
        peer = scope.get("client")
        address = peer[0] if peer else "-"
        if self.proxies:
            forwarded = [
                v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"
            ]
            address = self.proxies.client(address, forwarded)
        return address

    def _write(self, scope: Any, answer: list[int], seconds: float) -> None:
        status, size = scope.get(SERVER_ANSWER) or answer
        path = _escaped(scope.get("raw_path", b"").decode("latin-1") or scope.get("path", ""))
        query = redacted_query(scope.get("query_string", b""))
        target = f"{path}?{query}" if query else path
        client, user, method = self._client(scope), user_of(scope), scope["method"]
        if method == "HEAD":
            size = 0  # uvicorn sends no body, whatever the app gave
        rid = scope[REQUEST_ID]
        ms = seconds * 1000
        log.info(
            '%s %s "%s %s" %d %d %.1fms id=%s',
            client,
            user,
            method,
            target,
            status,
            size,
            ms,
            rid,
            extra={
                "fields": {
                    "client": client,
                    "user": user,
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "bytes": size,
                    "duration_ms": round(ms, 3),
                    "request_id": rid,
                }
            },
        )
