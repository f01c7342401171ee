"""Plumbing shared by the /v2 handlers: headers, error bodies, ranges, bounded bodies."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, Response

from domain.errors import RegistryError

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_NUMBER = re.compile(r"[0-9]+")
# Most entries one page of tags or repositories holds, whatever `n` asks for (a shorter
# page always carries a Link to the rest); also keeps SQL LIMITs in range.
MAX_PAGE = 10_000
_HUGE = 2**63 - 1


def oci_response(
    status: int,
    body: Any = None,
    media_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    if body is None:
        content = b""
    elif isinstance(body, bytes):
        content = body
    else:
        content = msgspec.json.encode(body)
    return Response(
        content,
        status_code=status,
        media_type=media_type,
        headers={**API_VERSION, "Content-Length": str(len(content)), **(headers or {})},
    )


def error_body(exc: RegistryError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    error["detail"] = exc.detail if exc.detail is not None else {}
    return {"errors": [error]}


def error_response(exc: RegistryError, headers: dict[str, str] | None = None) -> Response[Any]:
    """The OCI error body; with the error's own headers (a 401's Bearer challenge)."""
    own = getattr(exc, "headers", None)
    return oci_response(exc.status, error_body(exc), headers={**(own or {}), **(headers or {})})


def _number(digits: str) -> int:
    """A decimal number of any length; beyond int64 it saturates (int() refuses >4300 digits)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 19 else _HUGE


def parse_content_range(value: str | None) -> tuple[int, int] | None:
    """The `start-end` of a chunk (PATCH); None if absent. Malformed: 416 RANGE_INVALID."""
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None or _number(match[1]) > _number(match[2]):
        raise RegistryError("RANGE_INVALID", "malformed Content-Range", {"Content-Range": value})
    return _number(match[1]), _number(match[2])


def parse_range(value: str, size: int) -> tuple[int, int]:
    """Inclusive byte range of a `Range: bytes=…` header; unsatisfiable: 416 RANGE_INVALID."""
    match = _RANGE.fullmatch(value.strip())
    unsatisfiable = RegistryError(
        "RANGE_INVALID", "requested range not satisfiable", {"Range": value, "size": size}
    )
    if match is None or (match[1] == "" and match[2] == ""):
        raise unsatisfiable
    if match[1] == "":
        suffix = _number(match[2])
        if suffix == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - suffix), size - 1
    start = _number(match[1])
    end = min(_number(match[2]), size - 1) if match[2] else size - 1
    if start >= size or start > end:
        raise unsatisfiable
    return start, end


def content_length(request: Request[Any, Any, Any]) -> int | None:
    """The declared body length, if there is a well-formed one."""
    return declared_length(request.headers.get("content-length"))


def declared_length(declared: str | None) -> int | None:
    """The length a Content-Length header value declares, if it is a well-formed one."""
    if declared is None or _NUMBER.fullmatch(declared) is None:
        return None
    return _number(declared)


async def read_body(request: Request[Any, Any, Any], limit: int, error: RegistryError) -> bytes:
    """The whole body, refusing (with `error`) anything over `limit` bytes without reading it."""
    declared = content_length(request)
    if declared is not None and declared > limit:
        raise error
    buffer = bytearray()
    async for chunk in request.stream():
        buffer += chunk
        if len(buffer) > limit:
            raise error
    return bytes(buffer)


def query_int(request: Request[Any, Any, Any], key: str) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return None
    if _NUMBER.fullmatch(raw) is None:  # ASCII only: str.isdigit() accepts "²", int() not
        raise RegistryError("PAGINATION_NUMBER_INVALID", detail={key: raw})
    return _number(raw)
