"""Request bodies of /api: a bounded JSON object, read and checked by the handler itself so
that every malformed body gets our INVALID_INPUT, never a framework's own answer."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request

from domain.errors import RegistryError

MAX_BODY = 64 * 1024  # every /api body is a small JSON object


async def json_object(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The request's body as a JSON object; 400 INVALID_INPUT for anything else."""
    body = await request.body()
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise RegistryError("INVALID_INPUT", "the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise RegistryError("INVALID_INPUT", "the body must be a JSON object")
    return value


def text_field(body: dict[str, Any], field: str, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise RegistryError(
            "INVALID_INPUT", f"{field!r} is required and must be a string", {"field": field}
        )
    return value
