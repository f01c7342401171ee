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
