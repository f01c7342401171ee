"""Filesystem blob store: blobs/<alg>/<xx>/<hex>, uploads in blobs/_uploads/<id>.<repo key>.

Uploads stream to a temporary file while being hashed; a finished upload is verified,
fsynced and renamed into place atomically, so a killed upload never leaves a partial blob
visible. Hash state of an upload lives in this process (storage.sessions, with the caps on
open sessions); if the upload continues in another process (another replica, a restart), the
file is re-hashed once on completion.

An upload whose client died mid-PATCH stays resumable: the file holds exactly the bytes
written (and hashed) before the body broke off, so the upload's status (GET) tells the
client where to continue (PATCH with Content-Range). Sessions left alone for the TTL are
purged, with their hash state (`purge_stale_uploads`, run periodically).

An upload is one file whose name carries the upload id and a key of its repository (so an
upload is found only through its own repository), and whose modification time tells when it
was last written: starting one is one file creation, finishing one is its rename into place.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import time
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from storage.errors import DigestMismatch, UploadBusy, UploadOffsetMismatch, UploadUnknown
from storage.page_cache import CachedFile, RecentWrites, default_budget
from storage.sessions import OpenUploads, Session

T = TypeVar("T")
CHUNK = 1024 * 1024
SMALL = 256 * 1024
# An upload's data is synced in the background every 8 MiB it grows (however it arrives:
# one body or many PATCHes), so the fsync that completes it has little left to do.
SYNC_EVERY = 8 * 1024 * 1024
SYNC_THREADS = 4  # uploads synced at once (more wait: they share one disk and journal)
# Seconds a request waits for another one writing the same upload to finish (a PATCH whose
# client died is done within milliseconds; one whose connection hangs half-open is not).
BUSY_WAIT = 5.0
_ALGORITHMS = ("sha256", "sha512")


class FilesystemStore:
    def __init__(
        self,
        root: str | os.PathLike[str],
        max_uploads_per_user: int = 0,
        max_uploads_per_repository: int = 0,
        cache_budget: int | None = None,
    ) -> None:
        self.root = Path(root)
        # written blob bytes this process leaves in the page cache (storage.page_cache)
        self.recent = RecentWrites(default_budget() if cache_budget is None else cache_budget)
        self._syncers = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="blob-sync")
        self.uploads = self.root / "_uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.sessions = OpenUploads(max_uploads_per_user, max_uploads_per_repository)
        # One request at a time writes an upload (a client resuming after its PATCH died
        # waits until that PATCH's last write is done): a lock per upload while in use.
        self._busy: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- blobs -------------------------------------------------------------------------------
    def path(self, digest: str) -> Path:
        algorithm, encoded = digest.split(":", 1)
        return self.root / algorithm / encoded[:2] / encoded

    def size(self, digest: str) -> int | None:
        try:
            return self.path(digest).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def exists(self, digest: str) -> bool:
        return self.size(digest) is not None

    def read_bytes(self, digest: str) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def put_bytes(self, digest: str, data: bytes) -> None:
        """Store small content (manifests) whose digest the caller verified."""
        if self.exists(digest):
            return
        tmp = self.uploads / f"put-{uuid.uuid4().hex}"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._place(tmp, digest)

    async def read(
        self, digest: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream bytes [start, end] (inclusive) of a blob in 1 MiB pieces.

        The next piece is read from disk while the one before is being sent: a blob that is
        not in the page cache (all but the most recently written, see storage.page_cache)
        streams at the speed of the slower of the two, not of their sum.
        """
        fh = await anyio.to_thread.run_sync(open, self.path(digest), "rb", 0)

        def fetch(offset: int) -> asyncio.Future[bytes]:
            n = min(CHUNK, remaining)
            return asyncio.ensure_future(anyio.to_thread.run_sync(os.pread, fh.fileno(), n, offset))

        ahead: asyncio.Future[bytes] | None = None
        try:
            remaining = (await anyio.to_thread.run_sync(os.fstat, fh.fileno())).st_size - start
            if end is not None:
                remaining = min(remaining, end - start + 1)
            ahead = fetch(start) if remaining > 0 else None
            offset = start
            while ahead is not None:
                data = await ahead
                ahead = None
                if not data:
                    break
                offset += len(data)
                remaining -= len(data)
                if remaining > 0:
                    ahead = fetch(offset)
                yield data
        finally:
            if ahead is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(ahead)
            fh.close()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def writable(self) -> bool:
        probe = self.uploads / f".probe-{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
            return True
        except OSError:
            return False

    def _place(self, tmp: Path, digest: str) -> Path:
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return target

    # -- uploads -----------------------------------------------------------------------------
    def start_upload(self, repository: str, owner: str = "") -> str:
        """A new upload session of `owner` (who opens it); TooManyUploads over a cap."""
        upload_id = str(uuid.uuid4())
        path = self._data(upload_id, repository)
        self.sessions.add(upload_id, Session(path, repository, owner))
        try:
            path.touch(exist_ok=False)
        except BaseException:
            self.sessions.remove(upload_id)
            raise
        return upload_id

    @contextlib.asynccontextmanager
    async def _writing(self, upload_id: str) -> AsyncIterator[None]:
        """Hold the upload for one request; UploadBusy if another one keeps it too long."""
        lock = self._busy.get(upload_id)
        if lock is None:
            lock = self._busy[upload_id] = asyncio.Lock()
        try:
            async with asyncio.timeout(BUSY_WAIT):
                await lock.acquire()
        except TimeoutError:
            raise UploadBusy(upload_id) from None
        try:
            yield
        finally:
            lock.release()

    def _data(self, upload_id: str, repository: str) -> Path:
        key = hashlib.sha256(repository.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.uploads / f"{upload_id}.{key}"

    def _upload(self, upload_id: str, repository: str) -> Path:
        """The data file of an upload of `repository`; UploadUnknown if there is none."""
        try:
            uuid.UUID(upload_id)
        except ValueError:
            raise UploadUnknown(upload_id) from None
        data = self._data(upload_id, repository)
        if not data.is_file():
            raise UploadUnknown(upload_id)
        return data

    def upload_size(self, upload_id: str, repository: str) -> int:
        try:
            return self._upload(upload_id, repository).stat().st_size
        except FileNotFoundError:
            raise UploadUnknown(upload_id) from None

    async def append(
        self,
        upload_id: str,
        repository: str,
        body: AsyncIterable[bytes],
        start: int | None = None,
    ) -> int:
        """Append a request body to an upload; `start` is the client's Content-Range start."""
        async with self._writing(upload_id):
            return await self._append(upload_id, repository, body, start)

    async def _append(
        self, upload_id: str, repository: str, body: AsyncIterable[bytes], start: int | None
    ) -> int:
        data_path = self._upload(upload_id, repository)
        size = data_path.stat().st_size
        if start is not None and start != size:
            raise UploadOffsetMismatch(size)
        session = self.sessions.get(upload_id)
        state = session.hashing if session is not None else None
        if state is not None and state.offset != size:
            state = None  # another process wrote to it meanwhile
        # An upload this process opened keeps its sync state between requests (a sync may
        # run on while the client sends the next PATCH); one opened elsewhere, this request.
        cached = session.cached if session is not None else CachedFile(data_path, size, size)
        fh = open(data_path, "ab", buffering=0)  # noqa: SIM115 - closed below
        offset = size
        buffer = bytearray()
        # One 1 MiB write (and hash) runs in a thread while the next MiB is received; awaiting
        # the previous one before starting the next keeps the order.
        writing: asyncio.Future[None] | None = None

        def flush(piece: bytearray) -> None:
            fh.write(piece)
            if state is not None:
                state.hasher.update(piece)
                state.offset += len(piece)

        try:
            async for chunk in body:
                buffer += chunk
                if len(buffer) >= CHUNK:
                    if writing is not None:
                        await writing
                    self._settle_behind(cached, offset)
                    writing = asyncio.ensure_future(anyio.to_thread.run_sync(flush, buffer))
                    offset += len(buffer)
                    buffer = bytearray()
            if writing is not None:
                await writing
            if len(buffer) >= SMALL:
                await anyio.to_thread.run_sync(flush, buffer)
            elif buffer:
                flush(buffer)  # a small body costs less than a hand-off to a thread
            offset += len(buffer)
            writing = None
            self._settle_behind(cached, offset)
        finally:
            if writing is not None and not writing.done():
                with contextlib.suppress(Exception):
                    await asyncio.shield(writing)
            fh.close()
            if session is None:  # nowhere to keep a sync running on: this request waits
                await self._settled(cached)
        if state is None:
            self.sessions.drop_hashing(upload_id)
        try:
            return data_path.stat().st_size
        except FileNotFoundError:  # purged or cancelled meanwhile
            raise UploadUnknown(upload_id) from None

    def _settle_behind(self, cached: CachedFile, offset: int) -> None:
        """Sync the upload in the background once it has grown SYNC_EVERY since the last
        sync (unless one is running): the request goes on, and so may the next one."""
        if offset - cached.end < SYNC_EVERY:
            return
        if cached.settling is not None:
            if not cached.settling.done():
                return
            failed, cached.settling = cached.settling, None
            failed.result()  # a failed sync fails the request that sees it (once)
        # in threads of the store's own (not bound to an event loop: the sync may outlive
        # the request and its loop)
        cached.settling = self._syncers.submit(self._sync, cached, offset)

    def _sync(self, cached: CachedFile, end: int) -> None:
        """Write an upload's data up to `end` (at least) to disk, then hand it to the page
        cache's budget (which drops older written data)."""
        path = cached.path
        if path is None:
            return
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # cancelled or purged meanwhile
            return
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        self.recent.synced(cached, end)

    @staticmethod
    async def _settled(cached: CachedFile) -> None:
        """Wait for an upload's background sync, if any; raises what it raised."""
        if cached.settling is not None:
            settling, cached.settling = cached.settling, None
            await asyncio.shield(asyncio.wrap_future(settling))

    def _digest_of(self, upload_id: str, data_path: Path, algorithm: str) -> str:
        state = self.sessions.hashing(upload_id)
        size = data_path.stat().st_size
        if algorithm == "sha256" and state is not None and state.offset == size:
            return "sha256:" + state.hasher.hexdigest()
        hasher = hashlib.new(algorithm)
        with open(data_path, "rb") as fh:
            while piece := fh.read(CHUNK):
                hasher.update(piece)
        return f"{algorithm}:{hasher.hexdigest()}"

    def _finish(self, upload_id: str, repository: str, digest: str) -> int:
        data_path = self._upload(upload_id, repository)
        algorithm = digest.split(":", 1)[0]
        if algorithm not in _ALGORITHMS:
            raise DigestMismatch(digest)
        actual = self._digest_of(upload_id, data_path, algorithm)
        if actual != digest:
            raise DigestMismatch(digest)
        size = data_path.stat().st_size
        if self.exists(digest):
            self.cancel(upload_id, repository)
            return size
        with open(data_path, "rb+") as fh:
            os.fsync(fh.fileno())
        session = self.sessions.get(upload_id)
        # opened in another process: all of it is new to this one
        cached = session.cached if session is not None else CachedFile(data_path)
        self.recent.synced(cached, size)
        target = self._place(data_path, digest)  # the upload's file becomes the blob
        self.recent.moved(cached, target)
        self.sessions.remove(upload_id)
        return size

    async def finish(self, upload_id: str, repository: str, digest: str) -> int:
        """Verify the upload against `digest` and move it into place; returns its size.

        On a digest mismatch the upload stays open, so the client may retry or cancel.
        """
        size, _ = await self.finish_then(upload_id, repository, digest, lambda size: None)
        return size

    async def finish_then(
        self, upload_id: str, repository: str, digest: str, then: Callable[[int], T]
    ) -> tuple[int, T]:
        """`finish`, then `then(size)` in the same worker thread (a command that records the
        blob: one hand-off to a thread and back per upload, not two); its size and result."""
        async with self._writing(upload_id):
            session = self.sessions.get(upload_id)
            if session is not None:
                await self._settled(session.cached)

            def finished() -> tuple[int, T]:
                size = self._finish(upload_id, repository, digest)
                return size, then(size)

            return await anyio.to_thread.run_sync(finished)

    def purge_stale_uploads(self, older_than: float) -> int:
        """Remove upload sessions untouched for `older_than` seconds (abandoned, or their
        client was killed), in every process's name, and forget the hash state of those
        this process opened; returns how many files were removed."""
        cutoff = time.time() - older_than
        purged = 0
        for entry in self.uploads.iterdir():
            # An upload is a file (its mtime shows the last write), as is what a killed
            # manifest write leaves (`put-*`); a folder is an upload of an older version.
            data = entry / "data" if entry.is_dir() else entry
            try:
                touched = (data if data.exists() else entry).stat().st_mtime
            except FileNotFoundError:
                continue  # finished or cancelled meanwhile
            upload_id = entry.name.split(".", 1)[0]
            busy = self._busy.get(upload_id)
            if touched >= cutoff or (busy is not None and busy.locked()):
                continue  # fresh, or a request of this process is writing it right now
            session = self.sessions.get(upload_id)
            if session is not None:
                self.recent.forget(session.cached)
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            purged += 1
        self.sessions.prune()
        return purged

    def cancel(self, upload_id: str, repository: str) -> None:
        data = self._upload(upload_id, repository)
        self._forget(upload_id)
        data.unlink(missing_ok=True)

    def _forget(self, upload_id: str) -> None:
        """Forget the session of an upload being removed, and its pages in the budget."""
        session = self.sessions.get(upload_id)
        if session is not None:
            self.recent.forget(session.cached)
        self.sessions.remove(upload_id)
