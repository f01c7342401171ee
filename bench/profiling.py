"""Where the server's time goes: py-spy samples the running registry while a load runs, and
the collapsed stacks are summarised by frame and by package."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


def find_py_spy(install: bool) -> str | None:
    """py-spy next to this interpreter or on PATH; else `pip install py-spy` into this venv."""
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    if shutil.which("py-spy"):
        return shutil.which("py-spy")
    if install:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "py-spy"],
            capture_output=True,
            timeout=600,
        )
        if here.exists():
            return str(here)
    return shutil.which("py-spy")


def record(
    py_spy: str, pid: int, seconds: float, out: Path, rate: int = 200, tree: bool = False
) -> subprocess.Popen:
    """Start sampling `pid` (all its threads, idle ones skipped; with `tree`, its child
    processes too) for `seconds`."""
    cmd = [py_spy, "record", "-p", str(pid), "-d", str(max(1, round(seconds)))]
    cmd += ["-r", str(rate), "-f", "raw", "-o", str(out), "--nonblocking"]
    if tree:
        cmd.append("--subprocesses")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# Which package a frame's file belongs to (py-spy prints paths shortened to the package).
_OURS = ("api/", "domain/", "projections/", "storage/", "workers/", "cyp_registry/", "migrations/")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def package(file: str) -> str:
    f = file.replace("\\", "/")
    for marker in ("site-packages/", "dist-packages/"):
        if marker in f:
            f = f.split(marker, 1)[1]
    if f.startswith(_OURS):
        return "ours:" + f.split("/", 1)[0]
    if f.startswith("<"):
        return f
    top = f.split("/", 1)[0] if "/" in f else f.removesuffix(".py")
    if top.startswith("python3") or top in ("usr", "lib"):
        parts = f.split("/")
        return "stdlib:" + (
            parts[-2] if parts[-1] == "__init__.py" else parts[-1].removesuffix(".py")
        )
    return top


# Leaf frames of threads that only wait for work (py-spy may count a lock wait as active).
_WAITING = (
    "wait (threading.py)",
    "get (queue.py)",
    "_worker (concurrent/futures/thread.py)",
    "select (selectors.py)",
)


@dataclass
class Profile:
    samples: int = 0
    waiting: int = 0
    self_frames: collections.Counter[str] = field(default_factory=collections.Counter)
    inclusive: collections.Counter[str] = field(default_factory=collections.Counter)
    self_packages: collections.Counter[str] = field(default_factory=collections.Counter)
    threads: collections.Counter[str] = field(default_factory=collections.Counter)


def parse(path: Path) -> Profile:
    prof = Profile()
    if not path.exists():
        return prof
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = ""
        if frames and frames[0].startswith(("process ", "thread ")):
            thread = frames.pop(0)
        if frames and frames[0].startswith("thread "):
            thread = frames.pop(0)
        if not frames:
            continue
        if _short(frames[-1]).endswith(_WAITING):
            prof.waiting += n
            continue
        prof.samples += n
        prof.threads[thread or "?"] += n
        leaf = frames[-1]
        prof.self_frames[_short(leaf)] += n
        m = _FRAME.match(leaf)
        prof.self_packages[package(m.group("file")) if m else "?"] += n
        for frame in set(frames):
            prof.inclusive[_short(frame)] += n
    return prof


def _short(frame: str) -> str:
    """`func (file.py:123)` -> `func (file.py)`: lines split one function's time otherwise."""
    m = _FRAME.match(frame)
    return f"{m.group('func')} ({m.group('file')})" if m else frame


def summary(prof: Profile, top: int = 12) -> list[str]:
    if not prof.samples:
        return ["(no samples)"]
    total = prof.samples
    lines = [
        f"{total} samples of busy threads ({prof.waiting} more of threads waiting on a lock or "
        "queue for work left out)"
    ]
    lines.append(
        "self time by package: "
        + ", ".join(
            f"{name} {100 * n / total:.0f}%" for name, n in prof.self_packages.most_common(10)
        )
    )
    lines.append("top frames by self time:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in prof.self_frames.most_common(top)]
    ours = [(f, n) for f, n in prof.inclusive.most_common() if _is_ours(f)]
    lines.append("our code, inclusive time:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in ours[:top]]
    return lines


def _is_ours(frame: str) -> bool:
    m = _FRAME.match(frame)
    return bool(m) and package(m.group("file")).startswith("ours:")


def wait(proc: subprocess.Popen, timeout: float) -> str:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return (err or b"").decode(errors="replace").strip()[-500:] if proc.returncode else ""
