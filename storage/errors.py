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
