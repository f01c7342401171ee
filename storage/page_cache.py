"""Which pages of written blobs this process leaves in the page cache: the most recently
written ones, up to a budget. As new data is written (and synced), the oldest written data
beyond the budget is dropped (`posix_fadvise(DONTNEED)`), so the new writes reuse the pages
just freed.

Why not leave it all to the kernel: on virtual machines that hand memory back to the host
(free page reporting, ballooning), every page the page cache grows into is memory the host
hands out again on first touch: 512 MiB written into such pages costs ~1.3 s of kernel time,
into pages just dropped ~0.25 s (bench). Why not drop everything once synced (what the store
did before): a blob pulled right after its push (CI pushes, then deploys) was then read from
disk into fresh pages again, at a quarter of the speed. With a budget the page cache our
writes hold stays the same size and is recycled: writes cost what they cost into dropped
pages, and the last budget's worth of blobs is served from memory.

Only clean (synced) ranges are handed in: DONTNEED cannot drop dirty pages."""

from __future__ import annotations

import collections
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

# Files tracked at most (small blobs are many): beyond it the oldest is dropped whole.
MAX_FILES = 8192
# The budget of one process unless configured: 1 GiB (the last image or two pushed), less
# where the processes that write would together keep more than an eighth of the memory.
BUDGET = 1024 * 1024 * 1024


def default_budget(processes: int = 1) -> int:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        memory = 8 * BUDGET
    return min(BUDGET, memory // 8 // max(1, processes))


@dataclass(eq=False)
class CachedFile:
    """A written file's bytes [start, end) this process left cached. `path` follows the file
    when an upload becomes a blob; `settling` is a background sync of it still running."""

    path: Path | None
    start: int = 0
    end: int = 0
    settling: Future[None] | None = field(default=None, repr=False)


def drop(path: Path, start: int, length: int) -> None:
    """Drop [start, start + length) of a file's clean pages from the page cache."""
    if not hasattr(os, "posix_fadvise"):  # not Linux: the pages simply stay cached
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # deleted (its pages went with it) or renamed this very moment
        return
    try:
        os.posix_fadvise(fd, start, length, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class RecentWrites:
    """The budget of cached written bytes (0: drop each range as soon as it is synced).
    Thread-safe: ranges are handed in by the threads that sync them."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.kept = 0
        self._files: collections.OrderedDict[CachedFile, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def synced(self, file: CachedFile, end: int) -> None:
        """Bytes of `file` up to `end` are on disk: keep them, drop the oldest over budget."""
        drops: list[tuple[Path, int, int]] = []
        with self._lock:
            if file.path is None or end <= file.end:
                return
            if file not in self._files:
                self._files[file] = None
            self.kept += end - file.end
            file.end = end
            while self._files and (self.kept > self.budget or len(self._files) > MAX_FILES):
                oldest = next(iter(self._files))
                excess = self.kept - self.budget if len(self._files) <= MAX_FILES else None
                cached = oldest.end - oldest.start
                n = cached if excess is None else min(excess, cached)
                if n and oldest.path is not None:
                    drops.append((oldest.path, oldest.start, n))
                oldest.start += n
                self.kept -= n
                if oldest.start >= oldest.end:
                    del self._files[oldest]
        for path, start, n in drops:
            drop(path, start, n)

    def forget(self, file: CachedFile) -> None:
        """`file` is gone (cancelled, purged, a duplicate): its pages went with it."""
        with self._lock:
            if file in self._files:
                del self._files[file]
                self.kept -= file.end - file.start
            file.path = None
            file.start = file.end

    def moved(self, file: CachedFile, path: Path) -> None:
        """`file` was renamed (an upload became its blob)."""
        with self._lock:
            if file.path is not None:
                file.path = path
