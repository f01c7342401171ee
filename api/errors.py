"""Errors that escape a handler: OCI form on /v2, the envelope everywhere else; never a trace."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from api.oci import error_response
from domain.errors import RegistryError

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


def envelope(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        {"success": False, "error": {"code": code, "message": message}},
        status_code=status,
        headers=headers,
    )


def _on_v2(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/v2")


def on_registry_error(request: Request[Any, Any, Any], exc: RegistryError) -> Response[Any]:
    if _on_v2(request):
        return error_response(exc)
    return envelope(exc.status, exc.code, exc.message)


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    code = _HTTP_CODES.get(status, "UNAVAILABLE" if status >= 500 else "BAD_REQUEST")
    headers = getattr(exc, "headers", None)
    if _on_v2(request):
        oci_code = (
            code
            if code
            in {
                "UNAUTHORIZED",
                "DENIED",
                "UNSUPPORTED",
                "SIZE_INVALID",
                "TOOMANYREQUESTS",
                "NOT_FOUND",
            }
            else "UNSUPPORTED"
        )
        return error_response(RegistryError(oci_code, exc.detail, status=status), headers)
    return envelope(status, code, exc.detail, headers)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if _on_v2(request):
        return error_response(RegistryError("UNAVAILABLE", "internal error", status=500))
    return envelope(500, "INTERNAL_ERROR", "internal error")


HANDLERS = {
    RegistryError: on_registry_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
