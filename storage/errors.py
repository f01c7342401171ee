"""What the blob store can refuse; the API maps these to OCI error codes."""


class StorageError(Exception):
    pass


class UploadUnknown(StorageError):
    """No such upload session (never started, finished or cancelled)."""


class UploadOffsetMismatch(StorageError):
    """A chunk did not start where the upload currently ends."""

    def __init__(self, size: int) -> None:
        super().__init__(f"upload is at offset {size}")
        self.size = size


class DigestMismatch(StorageError):
    """The uploaded bytes do not hash to the digest the client claimed."""


class SizeMismatch(StorageError):
    """The body length differs from the Content-Length or the declared size."""


class TooManyUploads(StorageError):
    """A user or a repository has as many upload sessions open as it may."""

    def __init__(self, kind: str, limit: int) -> None:
        super().__init__(f"too many upload sessions open for this {kind} (at most {limit})")
        self.kind = kind
        self.limit = limit


class UploadBusy(StorageError):
    """Another request is still writing this upload (e.g. one whose client died unnoticed)."""
