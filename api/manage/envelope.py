"""The shape of every /api answer: the envelope `{"success":true,"data":…}` and its error
form `{"success":false,"error":{"code","message"}}` (the guide's §2.1)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec
from litestar import Response

T = TypeVar("T")


class Envelope(msgspec.Struct, Generic[T]):
    """A successful /api answer."""

    success: bool
    data: T


class ErrorDetail(msgspec.Struct):
    code: str
    message: str


class ErrorEnvelope(msgspec.Struct):
    """A refused /api request: `success` is false."""

    success: bool
    error: ErrorDetail


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    """A successful answer: `data` in the envelope."""
    return Response(Envelope(True, data), status_code=status, headers=headers)


def failure(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    """A refusal in the envelope."""
    return Response(
        ErrorEnvelope(False, ErrorDetail(code, message)), status_code=status, headers=headers
    )
