"""What the bench sends: streamed blobs (never whole in memory), small images, and a load of
manifest GETs (wrk when it can be had, else a multi-process asyncio client)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import http.client
import io
import json
import multiprocessing
import os
import queue
import random
import re
import shutil
import struct
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.auth import ADMIN, TokenCache

MiB = 1024 * 1024
PIECE = MiB
_BASE = os.urandom(PIECE)  # incompressible filler; every piece gets a unique 16-byte head

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"


# -- blob data ------------------------------------------------------------------------------
def pieces(seed: int, size: int, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Bytes [start, end) of the blob (seed, size), in 1 MiB pieces; start is piece-aligned."""
    end = size if end is None else end
    assert start % PIECE == 0
    index = start // PIECE
    offset = start
    while offset < end:
        n = min(PIECE, end - offset, size - index * PIECE)
        head = struct.pack(">QQ", seed, index)
        yield (head + _BASE[16:n])[:n]
        offset += n
        index += 1


def blob_digest(seed: int, size: int) -> str:
    h = hashlib.sha256()
    for piece in pieces(seed, size):
        h.update(piece)
    return "sha256:" + h.hexdigest()


# -- HTTP -----------------------------------------------------------------------------------
_TOKENS: dict[tuple[str, str], TokenCache] = {}
_TOKENS_LOCK = threading.Lock()


def tokens(base: str, credentials: tuple[str, str] = ADMIN) -> TokenCache:
    """The process's token cache for `base` (Docker token auth; Distribution asks for none)."""
    with _TOKENS_LOCK:
        key = (base, credentials[0])
        if key not in _TOKENS:
            _TOKENS[key] = TokenCache(base, *credentials)
        return _TOKENS[key]


def auth_headers(url: str, method: str = "GET") -> dict[str, str]:
    """The Authorization header (if the server wants one) for `method url`, as admin."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return tokens(f"{parts.scheme}://{parts.netloc}").headers(method, path)


class Client:
    """One keep-alive HTTP/1.1 connection (http.client: little client-side overhead). Sends
    the admin's Bearer token (one per scope, fetched before the request: streamed bodies are
    never replayed) when the server asks for tokens."""

    def __init__(
        self, base: str, timeout: float = 600, credentials: tuple[str, str] = ADMIN
    ) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.tokens = tokens(base, credentials)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def authorize(self, *repos: str) -> None:
        """Fetch the tokens for `repos` now (before a timed phase: a token request checks a
        password with argon2, on purpose slow)."""
        for repo in repos:
            self.tokens.headers("GET", f"/v2/{repo}/tags/list")

    def request(
        self, method: str, path: str, body=None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        status, answer, data = self._send(method, path, body, headers, refresh=False)
        if status == 401 and (body is None or isinstance(body, bytes)):  # not a stream: retry
            status, answer, data = self._send(method, path, body, headers, refresh=True)
        return status, answer, data

    def _send(
        self, method: str, path: str, body, headers: dict[str, str] | None, refresh: bool
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        headers = {**(headers or {}), **self.tokens.headers(method, path, refresh)}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        if resp.getheader("connection", "").lower() == "close":
            self.conn.close()
        return resp.status, resp.headers, data

    def download(self, path: str) -> int:
        """GET a blob, counting (not keeping) its bytes."""
        self.conn.request("GET", path, headers=self.tokens.headers("GET", path))
        resp = self.conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status} {resp.read()[:300]!r}")
        buf = bytearray(4 * MiB)
        view = memoryview(buf)
        total = 0
        while n := resp.readinto(view):
            total += n
        return total

    def close(self) -> None:
        self.conn.close()


def _expect(status: int, want: int, what: str, body: bytes) -> None:
    if status != want:
        raise RuntimeError(f"{what}: HTTP {status} (wanted {want}): {body[:300]!r}")


def _location(headers: http.client.HTTPMessage) -> str:
    loc = headers.get("Location") or ""
    parts = urlsplit(loc)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={digest}"


def start_upload(c: Client, repo: str) -> str:
    status, headers, body = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    _expect(status, 202, "POST upload", body)
    return _location(headers)


def push_monolithic(c: Client, repo: str, seed: int, size: int, digest: str) -> dict:
    """POST, then one PUT whose body streams the whole blob. Returns how long the server took
    to answer after the last byte was sent (digest check, fsync, rename, event)."""
    location = start_upload(c, repo)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    sent = [0.0]

    def body() -> Iterator[bytes]:
        yield from pieces(seed, size)
        sent[0] = time.monotonic()

    status, _, text = c.request("PUT", _with_digest(location, digest), body(), headers)
    _expect(status, 201, "PUT blob", text)
    return {"tail_s": time.monotonic() - sent[0]}


def push_chunked(c: Client, repo: str, seed: int, size: int, digest: str, chunk: int) -> dict:
    """POST, PATCH `chunk` bytes at a time with Content-Range, then an empty PUT. Returns
    how long the closing PUT took and each PATCH's seconds."""
    location = start_upload(c, repo)
    offset = 0
    patches: list[float] = []
    while offset < size:
        end = min(offset + chunk, size)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{end - 1}",
            "Content-Length": str(end - offset),
        }
        t0 = time.monotonic()
        status, resp_headers, body = c.request(
            "PATCH", location, pieces(seed, size, offset, end), headers
        )
        patches.append(time.monotonic() - t0)
        _expect(status, 202, "PATCH chunk", body)
        location = _location(resp_headers) or location
        offset = end
    t0 = time.monotonic()
    status, _, body = c.request("PUT", _with_digest(location, digest), b"", {"Content-Length": "0"})
    _expect(status, 201, "PUT (close upload)", body)
    return {"tail_s": time.monotonic() - t0, "patch_s": patches}


# -- small images ---------------------------------------------------------------------------
@dataclass
class Image:
    repo: str
    tag: str
    blobs: list[tuple[str, bytes]] = field(default_factory=list)  # (digest, bytes)
    manifest: bytes = b""
    digest: str = ""


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


LAYERS = 3  # each small image: a config and 3 layers of 64 KiB (issue 11's definition)
LAYER_SIZE = 64 * 1024


def _layer(rnd: random.Random, name: str, size: int) -> tuple[bytes, bytes]:
    """A gzipped tar holding one file of random bytes, `size` bytes long give or take a few
    (random data does not compress: the file is shrunk once by what tar and gzip added)."""
    n = size - 256
    for _ in range(2):
        content = rnd.randbytes(n)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), 0
            tar.addfile(info, io.BytesIO(content))
        tar_bytes = raw.getvalue()
        gz = gzip.compress(tar_bytes, mtime=0)
        if len(gz) == size:
            break
        n += size - len(gz)
    return tar_bytes, gz


def make_image(repo: str, tag: str, seed: int) -> Image:
    """A real small image: an OCI config, 3 gzipped tar layers of 64 KiB (+-20 bytes), an
    OCI manifest; every image's layers are its own (all its blobs are new to the registry)."""
    rnd = random.Random(seed)
    image = Image(repo, tag)
    layers, diff_ids = [], []
    for n in range(LAYERS):
        tar_bytes, gz = _layer(rnd, f"app/{tag}-{n}.bin", LAYER_SIZE)
        diff_ids.append(_sha(tar_bytes))
        layers.append({"mediaType": OCI_LAYER, "digest": _sha(gz), "size": len(gz)})
        image.blobs.append((_sha(gz), gz))
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/app/run"], "Labels": {"bench.seed": str(seed)}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "bench"} for _ in diff_ids],
        },
        separators=(",", ":"),
    ).encode()
    image.blobs.insert(0, (_sha(config), config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _sha(config), "size": len(config)},
        "layers": layers,
    }
    image.manifest = json.dumps(manifest, separators=(",", ":")).encode()
    image.digest = _sha(image.manifest)
    return image


def push_image(c: Client, image: Image, lat: dict[str, list[float]] | None = None) -> None:
    """What `docker push` does per image: HEAD each blob, POST + PUT the missing ones, then
    PUT the manifest by tag. `lat` collects each request's seconds by kind."""
    lat = {} if lat is None else lat

    def timed(kind: str, *args, **kwargs):
        t0 = time.perf_counter()
        out = c.request(*args, **kwargs)
        lat.setdefault(kind, []).append(time.perf_counter() - t0)
        return out

    for digest, data in image.blobs:
        status, _, body = timed("HEAD blob", "HEAD", f"/v2/{image.repo}/blobs/{digest}")
        if status == 200:
            continue
        status, headers, body = timed("POST upload", "POST", f"/v2/{image.repo}/blobs/uploads/")
        _expect(status, 202, "POST upload", body)
        location = _location(headers)
        headers = {"Content-Type": "application/octet-stream"}
        status, _, body = timed(
            "PUT blob (monolithic)", "PUT", _with_digest(location, digest), data, headers
        )
        _expect(status, 201, "PUT blob", body)
    status, _, body = timed(
        "PUT manifest by tag",
        "PUT",
        f"/v2/{image.repo}/manifests/{image.tag}",
        image.manifest,
        {"Content-Type": OCI_MANIFEST},
    )
    _expect(status, 201, "PUT manifest", body)


def image_plan(count: int, repos: int, salt: int) -> list[tuple[str, str, int]]:
    """(repository, tag, seed) of `count` images spread over `repos` repositories; the first
    is bench/app0:v<salt>.0."""
    return [
        (f"bench/app{i % repos}", f"v{salt}.{i // repos}", salt * 1_000_000 + i)
        for i in range(count)
    ]


def _image_process(
    base: str,
    jobs: list[list[tuple[str, str, int]]],
    ready: multiprocessing.Queue,
    go: multiprocessing.Event,
    results: multiprocessing.Queue,
) -> None:
    """One client process: a thread per worker, each with its own connection."""
    batches = [[make_image(*job) for job in worker_jobs] for worker_jobs in jobs]
    Client(base).authorize(*{image.repo for batch in batches for image in batch})  # cached
    ready.put(os.getpid())
    go.wait()
    out: list[tuple[str, str, str, str]] = []
    lock = threading.Lock()
    ends: list[float] = []
    lat: dict[str, list[float]] = {}

    def work(images: list[Image]) -> None:
        c = Client(base, timeout=120)
        mine: dict[str, list[float]] = {}
        for image in images:
            error = ""
            for attempt in range(2):
                try:
                    push_image(c, image, mine)
                    error = ""
                    break
                except Exception as exc:  # report, never hide
                    error = f"{type(exc).__name__}: {exc}"[:300]
                    c.close()
                    c = Client(base, timeout=120)
                    if attempt == 0:
                        continue
            with lock:
                out.append((image.repo, image.tag, image.digest, error))
        c.close()
        with lock:
            ends.append(time.monotonic())
            for kind, values in mine.items():
                lat.setdefault(kind, []).extend(values)

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((out, max(ends) if ends else time.monotonic(), lat))


def push_images(
    base: str, plan: list[tuple[str, str, int]], workers: int, processes: int
) -> tuple[float, list[tuple[str, str, str, str]], dict[str, list[float]]]:
    """Push `plan` with `workers` concurrent connections spread over `processes` processes;
    returns (seconds, [(repo, tag, digest, error)], {request kind: [seconds]})."""
    ctx = multiprocessing.get_context("spawn")
    per_worker: list[list[tuple[str, str, int]]] = [[] for _ in range(workers)]
    for i, job in enumerate(plan):
        per_worker[i % workers].append(job)
    groups = [per_worker[p::processes] for p in range(processes)]
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_image_process, args=(base, g, ready, go, results)) for g in groups]
    for p in procs:
        p.start()
    waiting = len(procs)
    deadline = time.monotonic() + 120
    while waiting:
        try:
            ready.get(timeout=1)
            waiting -= 1
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs) or time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                raise RuntimeError("an image-push client process failed to start") from None
    started = time.monotonic()
    go.set()
    pushed: list[tuple[str, str, str, str]] = []
    lat: dict[str, list[float]] = {}
    ended = started
    for _ in procs:
        out, end, their = results.get(timeout=1800)
        pushed += out
        ended = max(ended, end)
        for kind, values in their.items():
            lat.setdefault(kind, []).extend(values)
    for p in procs:
        p.join(30)
    return ended - started, pushed, lat


def latency_lines(lat: dict[str, list[float]]) -> list[str]:
    lines = []
    for kind, values in lat.items():
        v = sorted(values)
        p50, p99 = v[len(v) // 2], v[min(len(v) - 1, int(0.99 * len(v)))]
        lines.append(
            f"{kind}: {len(v)} requests, mean {1e3 * sum(v) / len(v):.1f} ms, "
            f"p50 {1e3 * p50:.1f} ms, p99 {1e3 * p99:.1f} ms"
        )
    return lines


def verify_images(base: str, pushed: list[tuple[str, str, str, str]]) -> dict[str, int]:
    """Every tag listed, every manifest GETs 200 by tag with the pushed digest."""
    c = Client(base, timeout=60)
    by_repo: dict[str, set[str]] = {}
    for repo, tag, _, _ in pushed:
        by_repo.setdefault(repo, set()).add(tag)
    unlisted = 0
    for repo, wanted in by_repo.items():
        status, _, body = c.request("GET", f"/v2/{repo}/tags/list")
        listed = set(json.loads(body).get("tags") or []) if status == 200 else set()
        unlisted += len(wanted - listed)
    bad_get = 0
    for repo, tag, digest, _ in pushed:
        status, headers, body = c.request(
            "GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}
        )
        if status != 200 or headers.get("Docker-Content-Digest") != digest or _sha(body) != digest:
            bad_get += 1
    c.close()
    return {
        "images": len(pushed),
        "push_errors": sum(1 for p in pushed if p[3]),
        "unlisted": unlisted,
        "bad_get": bad_get,
    }


# -- manifest GET load ----------------------------------------------------------------------
@dataclass
class Load:
    tool: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def find_wrk(install: bool) -> str | None:
    """wrk on PATH; else, as root with apt-get, install Debian's package."""
    path = shutil.which("wrk")
    if path or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return path
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"]):
        subprocess.run(step, env=env, capture_output=True, timeout=600)
        if shutil.which("wrk"):
            break
    if not shutil.which("wrk"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, timeout=600
        )
    return shutil.which("wrk")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def run_wrk(
    wrk: str,
    url: str,
    connections: int,
    seconds: float,
    threads: int = 2,
    headers: dict[str, str] | None = None,
) -> Load:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    cmd += ["--timeout", "10s", "-H", f"Accept: {ACCEPT}"]
    for name, value in (headers or {}).items():  # e.g. Authorization: Bearer <token>
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not (rps and total and p50 and p99):
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    errors = int(non2xx.group(1)) if non2xx else 0
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return Load(
        "wrk",
        float(rps.group(1)),
        _ms(p50.group(1)),
        _ms(p99.group(1)),
        int(total.group(1)),
        errors,
    )


async def _pyload(
    url: str, connections: int, seconds: float, headers: dict[str, str] | None = None
) -> tuple[int, int, list[float]]:
    parts = urlsplit(url)
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: {ACCEPT}\r\n{extra}\r\n"
    ).encode()
    latencies: list[float] = []
    counts = [0, 0]
    deadline = time.monotonic() + seconds

    async def one() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                latencies.append(time.perf_counter() - t0)
                counts[0 if head.startswith(b"HTTP/1.1 200") else 1] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)), return_exceptions=True)
    return counts[0], counts[1], latencies


def _pyload_process(
    url: str, connections: int, seconds: float, results, headers: dict[str, str] | None = None
) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    results.put(asyncio.run(_pyload(url, connections, seconds, headers)))


def run_pyload(
    url: str,
    connections: int,
    seconds: float,
    processes: int = 2,
    headers: dict[str, str] | None = None,
) -> Load:
    """Fallback load generator: `processes` processes of asyncio keep-alive connections."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    share = [connections // processes + (i < connections % processes) for i in range(processes)]
    procs = [
        ctx.Process(target=_pyload_process, args=(url, n, seconds, results, headers)) for n in share
    ]
    for p in procs:
        p.start()
    ok = bad = 0
    lat: list[float] = []
    for _ in procs:
        a, b, c = results.get(timeout=seconds + 120)
        ok, bad, lat = ok + a, bad + b, lat + c
    for p in procs:
        p.join(30)
    lat.sort()

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3 if lat else float("nan")

    return Load("python", (ok + bad) / seconds, pct(0.5), pct(0.99), ok + bad, bad)
