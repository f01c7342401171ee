"""The filesystem blob store on its own: atomic placement, verification, stale uploads."""

import asyncio
import hashlib
import os
import time

import pytest

from storage.errors import (
    DigestMismatch,
    TooManyUploads,
    UploadBusy,
    UploadOffsetMismatch,
    UploadUnknown,
)
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
    """A blob of several pieces (written, synced and, with no page-cache budget, dropped
    from the page cache as it goes) reads back byte for byte, whole and in ranges across
    piece boundaries."""
    from storage import filesystem

    data = os.urandom(filesystem.SYNC_EVERY + 3 * filesystem.CHUNK + 17)
    store = FilesystemStore(tmp_path, cache_budget=0)
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


def test_open_sessions_are_capped_per_user_and_per_repository(tmp_path):
    store = FilesystemStore(tmp_path, max_uploads_per_user=2, max_uploads_per_repository=3)
    first = store.start_upload("r", "ann")
    store.start_upload("r", "ann")
    with pytest.raises(TooManyUploads) as refused:
        store.start_upload("other", "ann")
    assert (refused.value.kind, refused.value.limit) == ("user", 2)
    store.start_upload("r", "bob")
    with pytest.raises(TooManyUploads) as refused:
        store.start_upload("r", "cid")
    assert (refused.value.kind, refused.value.limit) == ("repository", 3)
    assert store.start_upload("elsewhere", "cid")  # other repositories are not affected
    # a session that ends (cancelled, finished, or its file purged anywhere) frees its place
    store.cancel(first, "r")
    second = store.start_upload("r", "ann")
    asyncio.run(store.append(second, "r", _body(b"data")))
    asyncio.run(store.finish(second, "r", _digest(b"data")))
    third = store.start_upload("r", "ann")
    store._data(third, "r").unlink()
    assert store.start_upload("r", "ann")
    assert not list(store.uploads.glob(f"{first}.*"))  # a refused start leaves no file


def test_purge_forgets_the_hash_state_of_purged_sessions(tmp_path):
    store = FilesystemStore(tmp_path, max_uploads_per_user=1)
    old = store.start_upload("r", "ann")
    asyncio.run(store.append(old, "r", _body(b"half")))
    assert store.sessions.hashing(old) is not None
    past = time.time() - 7200
    os.utime(store._data(old, "r"), (past, past))
    assert store.purge_stale_uploads(older_than=3600) == 1
    assert store.sessions.hashing(old) is None and len(store.sessions) == 0
    assert store.start_upload("r", "ann")  # its place is free again


def test_a_broken_off_body_leaves_a_resumable_prefix(tmp_path):
    """A client that dies mid-PATCH: what reached the disk is a prefix of its body, hashed
    as far as it goes, and the upload continues from there to the right digest."""
    from storage import filesystem

    data = os.urandom(3 * filesystem.CHUNK + 1234)
    store = FilesystemStore(tmp_path)
    upload = store.start_upload("r", "ann")

    async def dies(after: int):
        for offset in range(0, after, 65536):
            yield data[offset : min(offset + 65536, after)]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        asyncio.run(store.append(upload, "r", dies(2 * filesystem.CHUNK + 5000)))
    have = store.upload_size(upload, "r")
    assert 0 < have <= 2 * filesystem.CHUNK + 5000
    assert store._data(upload, "r").read_bytes() == data[:have]
    assert store.sessions.hashing(upload).offset == have  # no re-read needed to finish
    asyncio.run(store.append(upload, "r", _body(data[have:]), have))
    assert asyncio.run(store.finish(upload, "r", _digest(data))) == len(data)
    assert store.read_bytes(_digest(data)) == data


def test_one_request_at_a_time_writes_an_upload(tmp_path, monkeypatch):
    from storage import filesystem

    monkeypatch.setattr(filesystem, "BUSY_WAIT", 0.2)
    store = FilesystemStore(tmp_path)
    upload = store.start_upload("r", "ann")

    async def main() -> None:
        stalled = asyncio.Event()

        async def hangs():
            yield b"x"
            stalled.set()
            await asyncio.Event().wait()  # a client whose connection hangs half-open

        writer = asyncio.create_task(store.append(upload, "r", hangs()))
        await stalled.wait()
        with pytest.raises(UploadBusy):
            await store.append(upload, "r", _body(b"y"), 0)
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
        assert await store.append(upload, "r", _body(b"y"), 0) == 1

    asyncio.run(main())
