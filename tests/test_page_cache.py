"""What of the blobs it writes the store leaves in the page cache: the most recent, up to a
budget (storage.page_cache), and how an upload in many PATCHes is synced as it grows."""

import asyncio
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from storage import filesystem, page_cache
from storage.filesystem import FilesystemStore
from storage.page_cache import CachedFile, RecentWrites

MiB = 1024 * 1024


async def _body(*chunks: bytes):
    for chunk in chunks:
        yield chunk


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _resident(path: Path) -> int | None:
    """Bytes of a file in the page cache (util-linux fincore), None if it cannot tell."""
    if not shutil.which("fincore") or not hasattr(os, "posix_fadvise"):
        return None
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip()) if out.returncode == 0 else None


def test_the_oldest_written_bytes_beyond_the_budget_are_dropped(tmp_path, monkeypatch):
    dropped: list[tuple[str, int, int]] = []
    monkeypatch.setattr(page_cache, "drop", lambda p, s, n: dropped.append((p.name, s, n)))
    recent = RecentWrites(10)
    a, b = CachedFile(tmp_path / "a"), CachedFile(tmp_path / "b")
    recent.synced(a, 6)
    recent.synced(b, 3)
    assert recent.kept == 9 and dropped == []
    recent.synced(a, 8)  # a grows: still the oldest; its head goes first
    assert dropped == [("a", 0, 1)] and (a.start, a.end, recent.kept) == (1, 8, 10)
    recent.synced(b, 12)
    assert dropped[1:] == [("a", 1, 7), ("b", 0, 2)]
    assert (b.start, b.end, recent.kept) == (2, 12, 10)
    recent.synced(b, 12)  # nothing new
    assert len(dropped) == 3
    recent.forget(b)  # gone: its bytes leave the budget, nothing to drop
    assert recent.kept == 0 and b.path is None
    recent.synced(b, 20)
    assert recent.kept == 0


def test_a_budget_of_zero_drops_what_is_synced(tmp_path, monkeypatch):
    dropped: list[tuple[int, int]] = []
    monkeypatch.setattr(page_cache, "drop", lambda p, s, n: dropped.append((s, n)))
    recent = RecentWrites(0)
    f = CachedFile(tmp_path / "f")
    recent.synced(f, 5)
    recent.synced(f, 9)
    assert dropped == [(0, 5), (5, 4)] and recent.kept == 0


def test_many_small_files_are_bounded_by_count(tmp_path, monkeypatch):
    dropped: list[str] = []
    monkeypatch.setattr(page_cache, "MAX_FILES", 3)
    monkeypatch.setattr(page_cache, "drop", lambda p, s, n: dropped.append(p.name))
    recent = RecentWrites(1 << 30)
    for name in "abcde":
        recent.synced(CachedFile(tmp_path / name), 100)
    assert dropped == ["a", "b"] and recent.kept == 300


def test_chunks_are_synced_as_the_upload_grows_not_per_request(tmp_path):
    """PATCHes smaller than SYNC_EVERY: the sync follows the upload's size (in the
    background, past the request), and the closing fsync has only the tail left."""
    store = FilesystemStore(tmp_path, cache_budget=1 << 30)
    upload = store.start_upload("r")
    cached = store.sessions.get(upload).cached
    piece = os.urandom(filesystem.SYNC_EVERY // 4)
    data = b""
    for _ in range(6):
        asyncio.run(store.append(upload, "r", _body(piece), len(data)))
        data += piece
        if cached.settling is not None:
            cached.settling.result(timeout=30)
    assert cached.end >= filesystem.SYNC_EVERY  # synced before the upload was finished
    assert asyncio.run(store.finish(upload, "r", _digest(data))) == len(data)
    assert store.read_bytes(_digest(data)) == data
    assert store.recent.kept == len(data) and cached.path == store.path(_digest(data))


def test_the_last_blobs_written_stay_cached_older_ones_are_dropped(tmp_path):
    store = FilesystemStore(tmp_path, cache_budget=4 * MiB)
    blobs = []
    for _ in range(3):
        data = os.urandom(3 * MiB)
        upload = store.start_upload("r")
        asyncio.run(store.append(upload, "r", _body(data)))
        asyncio.run(store.finish(upload, "r", _digest(data)))
        blobs.append(store.path(_digest(data)))
    assert store.recent.kept == 4 * MiB
    first, _second, last = (_resident(p) for p in blobs)
    if last is None:
        pytest.skip("no fincore here: the page cache cannot be inspected")
    assert first == 0  # dropped: beyond the budget
    assert last == 3 * MiB  # the last written stays in memory for its first pull


def test_a_cancelled_upload_leaves_the_budget(tmp_path):
    store = FilesystemStore(tmp_path, cache_budget=1 << 30)
    upload = store.start_upload("r")
    asyncio.run(store.append(upload, "r", _body(os.urandom(filesystem.SYNC_EVERY + 1))))
    cached = store.sessions.get(upload).cached
    if cached.settling is not None:
        cached.settling.result(timeout=30)
    assert store.recent.kept > 0
    store.cancel(upload, "r")
    assert store.recent.kept == 0 and cached.path is None
