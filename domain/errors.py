"""Domain errors carry an error code and its HTTP status: the OCI distribution spec's codes
(answered in the OCI form on /v2) and the management codes (answered in the /api envelope)."""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, default message), as in the OCI distribution spec's error table.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (404, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (415, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "METHOD_UNKNOWN": (405, "the method is not supported for this route"),
    "NOT_FOUND": (404, "not found"),
    "UNAVAILABLE": (503, "service unavailable"),
    # Management (/api) codes.
    "INVALID_INPUT": (400, "invalid input"),
    "USER_EXISTS": (409, "user already exists"),
    "USER_UNKNOWN": (404, "user unknown"),
    "NAMESPACE_EXISTS": (409, "the name is taken by a namespace or a user"),
    "NAMESPACE_UNKNOWN": (404, "namespace unknown"),
    "MEMBER_UNKNOWN": (404, "not a member of the namespace"),
    "TOKEN_UNKNOWN": (404, "access token or robot unknown"),
    "TOKEN_EXISTS": (409, "an access token or robot of this name exists"),
}


class RegistryError(Exception):
    """A failure the client caused (or may retry): never a 500."""

    def __init__(
        self, code: str, message: str | None = None, detail: Any = None, status: int | None = None
    ) -> None:
        default_status, default_message = ERROR_CODES[code]
        self.code = code
        self.message = message or default_message
        self.detail = detail
        self.status = status or default_status
        super().__init__(f"{code}: {self.message}")


class DatabaseUnavailable(RegistryError):
    """The database cannot be reached: 503 with `Retry-After`, never a wait for it."""

    RETRY_AFTER = "1"

    def __init__(self) -> None:
        super().__init__("UNAVAILABLE", "database unavailable; retry")
        self.headers = {"Retry-After": self.RETRY_AFTER}


class ConcurrentUpdate(Exception):
    """Another writer changed the same aggregate first; the command may be retried."""


def check_one_of(value: object, choices: tuple[str, ...], field: str) -> str:
    """`value` if it is one of `choices`; 400 INVALID_INPUT naming the field otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise RegistryError(
            "INVALID_INPUT", f"{field} must be one of {', '.join(choices)}", {"field": field}
        )
    return value
