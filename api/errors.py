"""Errors that escape a handler: OCI form on /v2, the envelope on /api (and /token,
/health), a readable page in the web UI (`api.web.errors`); never a trace."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from psycopg import InterfaceError as PsycopgInterfaceError
from psycopg import OperationalError as PsycopgOperationalError

from api.availability import connection_lost
from api.manage.envelope import failure
from api.v2.oci import error_response
from api.web.errors import is_page, page_error
from domain.errors import ERROR_CODES, ConcurrentUpdate, DatabaseUnavailable, RegistryError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NOT_FOUND",
    405: "UNSUPPORTED",
    413: "SIZE_INVALID",
    429: "TOOMANYREQUESTS",
}


def _on_v2(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/v2")


def _error(
    request: Request[Any, Any, Any], exc: RegistryError, headers: dict[str, str] | None = None
) -> Response[Any]:
    if _on_v2(request):
        return error_response(exc, headers)
    own = getattr(exc, "headers", None)  # e.g. a 401's WWW-Authenticate
    merged = {**(own or {}), **(headers or {})} or None
    if is_page(request):
        return page_error(request, exc.status, exc.message, merged)
    return failure(exc.status, exc.code, exc.message, merged)


def on_registry_error(request: Request[Any, Any, Any], exc: RegistryError) -> Response[Any]:
    return _error(request, exc)


def _http_code(status: int) -> str:
    return _HTTP_CODES.get(status, "UNAVAILABLE" if status >= 500 else "BAD_REQUEST")


def _v2_http_exception(exc: HTTPException) -> tuple[RegistryError, dict[str, str] | None]:
    code = _http_code(exc.status_code)
    code = code if code in ERROR_CODES else "UNSUPPORTED"
    return RegistryError(code, exc.detail, status=exc.status_code), exc.headers


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own refusals (no route, wrong method, body too large…)."""
    if is_page(request):
        return page_error(request, exc.status_code, exc.detail, exc.headers)
    if not _on_v2(request):
        if isinstance(exc, ValidationException):  # a query parameter or body of the wrong shape
            return failure(400, "INVALID_INPUT", _invalid(exc), exc.headers)
        return failure(exc.status_code, _http_code(exc.status_code), exc.detail, exc.headers)
    return error_response(*_v2_http_exception(exc))


def _invalid(exc: ValidationException) -> str:
    """Which parameters were wrong, from Litestar's validation details."""
    problems = [
        f"{item.get('key')}: {item.get('message')}"
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict) and item.get("key")
    ]
    return "invalid input" + (": " + "; ".join(problems) if problems else "")


def _busy() -> RegistryError:
    return RegistryError("TOOMANYREQUESTS", "concurrent updates of the same object; retry")


def on_contention(request: Request[Any, Any, Any], exc: ConcurrentUpdate) -> Response[Any]:
    """Retries were exhausted on a hot aggregate: ask the client to come back."""
    return _error(request, _busy(), {"Retry-After": "1"})


def _unavailable(services: Any, method: str, path: str, exc: Exception) -> RegistryError:
    if connection_lost(exc):
        services.database.failed(exc)
    else:
        log.warning("database error on %s %s: %s", method, path, exc)
    return DatabaseUnavailable()


def on_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The database failed the request (its connection died, a pool wait or a lock ran
    out): 503 with Retry-After; a lost database closes the gate (it logs the outage once)."""
    services = request.app.state.services
    return _error(request, _unavailable(services, request.method, request.url.path, exc))


def _internal_error() -> RegistryError:
    return RegistryError("UNAVAILABLE", "internal error", status=500)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if _on_v2(request):
        return error_response(_internal_error())
    if is_page(request):
        return page_error(request, 500, "internal error")
    return failure(500, "INTERNAL_ERROR", "internal error")


HANDLERS = {
    RegistryError: on_registry_error,
    ConcurrentUpdate: on_contention,
    # the event store's and psycopg's (PoolTimeout is one of psycopg's OperationalErrors)
    OperationalError: on_unavailable,
    InterfaceError: on_unavailable,
    PsycopgOperationalError: on_unavailable,
    PsycopgInterfaceError: on_unavailable,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}


def v2_failure(services: Any, method: str, path: str, exc: Exception) -> Response[Any]:
    """What the handlers above answer on /v2 for `exc`, without a Request: for the fast
    paths (api.v2.blob_fastpath), which run below Litestar. The handler is chosen as
    Litestar chooses it: the nearest class in the exception's MRO."""
    handler = next(HANDLERS[kind] for kind in type(exc).__mro__ if kind in HANDLERS)
    if handler is on_registry_error:
        return error_response(exc)  # type: ignore[arg-type]
    if handler is on_contention:
        return error_response(_busy(), {"Retry-After": "1"})
    if handler is on_unavailable:
        return error_response(_unavailable(services, method, path, exc))
    if handler is on_http_exception:
        return error_response(*_v2_http_exception(exc))  # type: ignore[arg-type]
    log.exception("unhandled error on %s %s", method, path)
    return error_response(_internal_error())
