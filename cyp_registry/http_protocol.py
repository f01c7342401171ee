"""The HTTP protocol `serve` runs: uvicorn's (httptools), with two additions.

Stalled clients. A request whose headers or body stop arriving is ended after
`CYP_IDLE_TIMEOUT` seconds without a byte: with 408 Request Timeout where an answer can still
be sent (the headers are incomplete, or the body is and the app has not started its answer),
then the connection is closed, and the app reading the body gets `http.disconnect` (so no
task waits for it forever, and no thread: bodies are read asynchronously). The clock counts
silence, not total time: every byte received restarts it, so a slow upload that keeps sending
takes as long as it needs; it stops while the client cannot be blamed — reading is paused
because the app has not taken what came (flow control, a pipelined request), it waits for
`100 Continue`, or the request is complete and the app is at work. A new connection that
sends nothing is closed after the same time, without an answer; an idle connection between
requests is uvicorn's (`timeout_keep_alive`, 5 s).

Bytes that are not HTTP. uvicorn answers them 400 and logs a bare warning `Invalid HTTP
request received.` each time; docker tries HTTPS first on every pull from a registry it was
told is insecure, so that is one warning per pull. Here it is one DEBUG line per client
address, saying what it probably was.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.access_log import SERVER_ANSWER

log = logging.getLogger("cyp_registry.http")

_INVALID = "Invalid HTTP request received."
_TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a ClientHello
_TIMEOUT_BODY = b"request timeout: no byte received for too long\n"
_EXPLAINED_MAX = 10_000  # client addresses remembered; then forgotten all at once
_explained: set[str] = set()


class _ExplainedLog:
    """uvicorn's logger for one connection, but its bare invalid-request warning goes to
    `explain` instead."""

    def __init__(self, logger: logging.Logger, explain: Any) -> None:
        self._logger = logger
        self._explain = explain

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if msg == _INVALID:
            self._explain()
        else:
            self._logger.warning(msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


class IdleTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, idle_timeout: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _ExplainedLog(self.logger, self._explain_invalid)  # type: ignore[assignment]
        self.idle_timeout = idle_timeout
        self._last_byte = 0.0
        self._idle_timer: Any = None
        self._first_byte: int | None = None
        self._in_headers = False  # a request began, its headers are not complete
        self._in_body = False  # its headers are complete, its body is not

    # -- the clock -----------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._last_byte = self.loop.time()
        if self.idle_timeout > 0:
            self._idle_timer = self.loop.call_later(self.idle_timeout, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._last_byte = self.loop.time()
        if self._first_byte is None and data:
            self._first_byte = data[0]
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:  # the connection is another protocol's now
        self.idle_timeout = 0
        super().handle_websocket_upgrade()

    def _client_owes_bytes(self) -> bool:
        """Whether we are waiting for the client (rather than it for us)."""
        if self.flow is None or self.flow.read_paused:
            return False
        if self._in_headers:
            return True
        if self._in_body:
            cycle = self.cycle
            return cycle is not None and not cycle.waiting_for_100_continue
        return self.cycle is None  # a new connection; between requests: keep-alive's timer

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self.transport.is_closing() or self.idle_timeout <= 0:
            return
        now = self.loop.time()
        if not self._client_owes_bytes():
            self._last_byte = now  # the clock runs only while the client owes us bytes
            wait = self.idle_timeout
        else:
            silent = now - self._last_byte
            if silent >= self.idle_timeout:
                self._time_out(silent)
                return
            wait = self.idle_timeout - silent
        self._idle_timer = self.loop.call_later(wait, self._check_idle)

    def _time_out(self, silent: float) -> None:
        cycle = self.cycle if self._in_body else None
        answer = self._in_headers or (cycle is not None and not cycle.response_started)
        where = "headers" if self._in_headers else "body" if self._in_body else "first request"
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.info(
            "%s %s: its request's %s stopped arriving (no byte for %.0f s, CYP_IDLE_TIMEOUT)",
            "408 to" if answer else "closed the connection of",
            client,
            where,
            silent,
        )
        if answer:
            self._send_408()
        if cycle is not None:
            if answer:
                cycle.scope[SERVER_ANSWER] = (408, len(_TIMEOUT_BODY))  # type: ignore[literal-required]
            cycle.disconnected = True  # the app's answer, if any comes, goes nowhere
            cycle.keep_alive = False
            cycle.message_event.set()  # the app waiting for the body: http.disconnect
        self.transport.close()

    def _send_408(self) -> None:
        content = [b"HTTP/1.1 408 Request Timeout\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(_TIMEOUT_BODY),
                b"connection: close\r\n\r\n",
                _TIMEOUT_BODY,
            ]
        )
        self.transport.write(b"".join(content))

    # -- bytes that are not HTTP -----------------------------------------------------------------
    def _explain_invalid(self) -> None:
        address = self.client[0] if self.client else "?"
        if address in _explained:
            return
        if len(_explained) >= _EXPLAINED_MAX:
            _explained.clear()
        _explained.add(address)
        what = (
            "a TLS handshake" if self._first_byte == _TLS_HANDSHAKE else "bytes that are not HTTP"
        )
        log.debug(
            "%s from %s (answered 400; said once per address): this registry speaks plain HTTP."
            " Put a TLS proxy in front of it (and set CYP_PUBLIC_URL), or have the client use"
            " http:// — docker does for an `insecure-registries` entry, after trying HTTPS first",
            what,
            address,
        )


def http_protocol(idle_timeout: float) -> Any:
    """uvicorn's `http` setting (a picklable factory, for the `--workers` processes)."""
    return functools.partial(IdleTimeoutProtocol, idle_timeout=idle_timeout)
