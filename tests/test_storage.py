"""The filesystem blob store on its own: atomic placement, verification, stale uploads."""

import asyncio
import hashlib
import os
import time

import pytest

from storage.errors import DigestMismatch, UploadOffsetMismatch, UploadUnknown
from storage.filesystem import FilesystemStore


async def _body(*chunks: bytes):
    for chunk in chunks:
        yield chunk


def _digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def test_chunked_upload_is_verified_and_placed(tmp_path):
    store = FilesystemStore(tmp_path)
    upload = store.start_upload("a/b")
    assert asyncio.run(store.append(upload, "a/b", _body(b"hello "), 0)) == 6
    with pytest.raises(UploadOffsetMismatch):
        asyncio.run(store.append(upload, "a/b", _body(b"x"), 3))
    asyncio.run(store.append(upload, "a/b", _body(b"world"), 6))
    with pytest.raises(DigestMismatch):
        asyncio.run(store.finish(upload, "a/b", _digest(b"other")))
    assert not store.exists(_digest(b"hello world"))  # nothing visible before it is verified
    assert asyncio.run(store.finish(upload, "a/b", _digest(b"hello world"))) == 11
    assert store.read_bytes(_digest(b"hello world")) == b"hello world"
    with pytest.raises(UploadUnknown):
        store.upload_size(upload, "a/b")


def test_sha512_and_a_fresh_process_rehash(tmp_path):
    upload = FilesystemStore(tmp_path).start_upload("r")
    other = FilesystemStore(tmp_path)  # another replica: no hash state for this upload
    asyncio.run(other.append(upload, "r", _body(b"abc")))
    assert asyncio.run(other.finish(upload, "r", _digest(b"abc", "sha512"))) == 3
    assert other.exists(_digest(b"abc", "sha512"))


def test_upload_belongs_to_its_repository(tmp_path):
    store = FilesystemStore(tmp_path)
    upload = store.start_upload("mine")
    with pytest.raises(UploadUnknown):
        store.upload_size(upload, "theirs")
    with pytest.raises(UploadUnknown):
        store.upload_size("../../etc", "mine")


def test_purge_removes_only_stale_uploads_and_temp_files(tmp_path):
    store = FilesystemStore(tmp_path)
    old, fresh = store.start_upload("r"), store.start_upload("r")
    lone = store.uploads / "put-0123"
    lone.write_bytes(b"half a manifest")
    past = time.time() - 7200
    (old_file,) = store.uploads.glob(f"{old}.*")  # an upload is one file
    os.utime(old_file, (past, past))
    os.utime(lone, (past, past))
    assert store.purge_stale_uploads(older_than=3600) == 2
    assert store.upload_size(fresh, "r") == 0
    with pytest.raises(UploadUnknown):
        store.upload_size(old, "r")
    assert not lone.exists()


def _read(store: FilesystemStore, digest: str, start: int, end: int | None) -> bytes:
    async def collect() -> bytes:
        return b"".join([piece async for piece in store.read(digest, start, end)])

    return asyncio.run(collect())


def test_a_big_blob_streams_back_whole_and_in_ranges(tmp_path):
    """A blob of several pieces (written, synced and dropped from the page cache as it goes)
    reads back byte for byte, whole and in ranges across piece boundaries."""
    from storage import filesystem

    data = os.urandom(filesystem.SYNC_EVERY + 3 * filesystem.CHUNK + 17)
    store = FilesystemStore(tmp_path)
    upload = store.start_upload("r")
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    asyncio.run(store.append(upload, "r", _body(*pieces)))
    digest = _digest(data)
    assert asyncio.run(store.finish(upload, "r", digest)) == len(data)
    assert _read(store, digest, 0, None) == data
    chunk = filesystem.CHUNK
    for start, end in [(0, 0), (1, chunk), (chunk - 1, 2 * chunk), (5, len(data) - 1)]:
        assert _read(store, digest, start, end) == data[start : end + 1]
    assert _read(store, digest, len(data) - 3, None) == data[-3:]
