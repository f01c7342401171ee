"""`cyp-registry serve` with timers around the steps of the write and read paths, for the
bench's diagnostic pass only (the measured runs use the plain server).

    python -m bench.instrumented serve --host … --port … --data-dir …

Nothing in the product is edited: the timers wrap methods of its classes at start-up. Every
half second the totals (calls, seconds, max) are written as JSON to $BENCH_STATS_FILE."""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import threading
import time
from pathlib import Path

_lock = threading.Lock()
STATS: dict[str, list[float]] = {}  # label -> [calls, seconds, max seconds]


def _record(label: str, seconds: float) -> None:
    with _lock:
        s = STATS.setdefault(label, [0, 0.0, 0.0])
        s[0] += 1
        s[1] += seconds
        s[2] = max(s[2], seconds)


def _wrap(owner: type, attr: str, label: str) -> None:
    fn = getattr(owner, attr)
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def timed_async(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                _record(label, time.perf_counter() - t0)

        setattr(owner, attr, timed_async)
    else:

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _record(label, time.perf_counter() - t0)

        setattr(owner, attr, timed)


POINTS = [
    # module, class, method, label
    ("api.services", "Services", "command", "api: command + wait for views (total)"),
    ("storage.filesystem", "FilesystemStore", "finish_then", "api: blob placed + linked (total)"),
    ("projections.waiter", "PositionWaiter", "wait", "api: wait for views"),
    ("api.services", "Services", "query", "api: view query (pool + SQL)"),
    ("domain.registry", "Registry", "_command", "domain: command in thread (incl. stripe lock)"),
    ("domain.registry", "Registry", "_get_all", "domain: load aggregates (one query)"),
    ("domain.registry", "Registry", "save", "domain: save (group commit + snapshots)"),
    (
        "domain.commands.group_commit",
        "GroupCommit",
        "_write",
        "domain: event-store transaction (a batch)",
    ),
    ("domain.registry", "Registry", "blob_linked", "domain: blob_linked check"),
    ("domain.registry", "Registry", "manifest_exists", "domain: manifest_exists check"),
    ("workers.projector", "ProjectionRunner", "step", "views: projection runner step"),
    (
        "eventsourcing.postgres",
        "PostgresApplicationRecorder",
        "select_notifications",
        "store: select notifications (runner, relay)",
    ),
    ("storage.filesystem", "FilesystemStore", "append", "storage: stream body to upload file"),
    ("storage.filesystem", "FilesystemStore", "_finish", "storage: verify + fsync + rename"),
    ("storage.filesystem", "FilesystemStore", "put_bytes", "storage: manifest write + fsync"),
    ("storage.filesystem", "FilesystemStore", "start_upload", "storage: start upload"),
    ("storage.filesystem", "FilesystemStore", "cancel", "storage: remove upload folder"),
]


def install() -> None:
    import importlib

    for module, cls, attr, label in POINTS:
        owner = getattr(importlib.import_module(module), cls)
        _wrap(owner, attr, label)
    _lags()


def _lags() -> None:
    """How long a committed write waits for the views: from its transaction's commit (the
    group commit's answer) to the views' commit (the runner's step), and to the event loop
    learning of it (the waiter)."""
    from domain.commands.group_commit import GroupCommit
    from projections.waiter import PositionWaiter
    from workers.projector import ProjectionRunner

    committed: dict[str, dict[int, float]] = {"step": {}, "loop": {}}

    def reached(which: str, label: str, position: int) -> None:
        now = time.perf_counter()
        with _lock:
            pending = committed[which]
            done = [p for p in pending if p <= position]
            times = [pending.pop(p) for p in done]
        for t in times:
            _record(label, now - t)

    finish = GroupCommit._finish

    def timed_finish(self, batch, error=None):
        if error is None:
            ids = [r.notification.id for t in batch for r in t.recordings]
            if ids:
                now = time.perf_counter()
                with _lock:
                    for which in committed.values():
                        which[max(ids)] = now
        return finish(self, batch, error)

    GroupCommit._finish = timed_finish
    step = ProjectionRunner.step

    def timed_step(self, conn):
        count = step(self, conn)
        if count and self._positions:
            reached("step", "views: commit -> views committed", min(self._positions.values()))
        return count

    ProjectionRunner.step = timed_step
    advance = PositionWaiter._advance

    def timed_advance(self, position):
        reached("loop", "views: commit -> event loop told", position)
        return advance(self, position)

    PositionWaiter._advance = timed_advance


def _dump(path: Path) -> None:
    while True:
        time.sleep(0.5)
        with _lock:
            text = json.dumps(STATS)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def read(path: Path) -> dict[str, list[float]]:
    """The totals of all processes: `path` (the serve process) and `<stem>-<pid>.json` (each
    API worker when serving with --workers N)."""
    total: dict[str, list[float]] = {}
    for f in sorted(path.parent.glob(f"{path.stem}*{path.suffix}")):
        try:
            stats = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        for label, (calls, seconds, peak) in stats.items():
            t = total.setdefault(label, [0, 0.0, 0.0])
            t[0] += calls
            t[1] += seconds
            t[2] = max(t[2], peak)
    return total


def diff(after: dict[str, list[float]], before: dict[str, list[float]]) -> list[str]:
    """Lines `label: calls, mean ms, total s` for what happened between two readings."""
    lines = []
    for label, (calls, seconds, _peak) in after.items():
        c0, s0, _ = before.get(label, [0, 0.0, 0.0])
        if calls - c0:
            n, s = calls - c0, seconds - s0
            lines.append(
                f"{label:<48} {int(n):>6} calls  mean {1e3 * s / n:8.2f} ms  total {s:7.2f} s"
            )
    return lines


def _start(suffix: str = "") -> None:
    install()
    stats = os.environ.get("BENCH_STATS_FILE")
    if stats:
        path = Path(stats)
        if suffix:
            path = path.with_name(f"{path.stem}{suffix}{path.suffix}")
        threading.Thread(target=_dump, args=(path,), daemon=True).start()


def main() -> int:
    _start()
    from cyp_registry.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
elif __name__ == "__mp_main__":
    # `serve --workers N`: uvicorn starts the API workers with multiprocessing's spawn, which
    # imports this main module again in each of them under this name: time them too, each
    # into its own file.
    _start(f"-{os.getpid()}")
