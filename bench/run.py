"""CYP Registry vs CNCF Distribution on this machine: blob push/pull MB/s, manifest GETs/s,
small images pushed/s (none lost) and their CPU per image, server RSS while a big blob is
pushed.

    .venv/bin/python -m bench.run [--quick] [--only images,chunked] [--workers N]
                                  [--markdown FILE] [--no-diagnose]

Both registries are started fresh in a temporary folder (ours on a new Postgres database and
a new JetStream stream, both removed afterwards) and measured one after the other, phase by
phase, each measurement --reps times (3; --quick 1), alternating which goes first; the
report gives each figure's median and its runs. Before each measurement the bench writes
back dirty pages and waits (bounded) for the machine to be quiet. Then a diagnostic pass
runs CYP Registry again with timers and py-spy to show where its time goes."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import instrumented, profiling, servers, workload
from bench.workload import MiB

MB = 1e6  # throughput is reported in MB/s = 10^6 bytes per second
# What --only selects, in the order they run; `pull` pulls the blob the monolithic push just
# wrote, so it runs that push too.
PHASES = ("rss", "monolithic", "pull", "chunked", "images", "manifests")


@dataclass
class Config:
    quick: bool
    blob: int
    big: int
    chunk: int
    reps: int
    images: int
    repos: int
    push_workers: int
    api_workers: int
    client_procs: int
    connections: int
    seconds: float
    quiet_wait: float
    profile: bool
    install: bool
    only: tuple[str, ...] = PHASES


def config(args: argparse.Namespace) -> Config:
    q = args.quick
    return Config(
        quick=q,
        blob=(args.blob_mib or (64 if q else 512)) * MiB,
        big=(args.big_mib or (512 if q else 2048)) * MiB,
        chunk=args.chunk_mib * MiB,
        reps=args.reps or (1 if q else 3),
        images=args.images or (50 if q else 200),
        repos=8,
        push_workers=16,
        api_workers=args.workers,
        client_procs=2,
        connections=args.connections,
        seconds=args.seconds or (3.0 if q else 10.0),
        quiet_wait=args.quiet_wait if args.quiet_wait is not None else (5.0 if q else 30.0),
        profile=not args.no_profile,
        install=not args.no_install,
        only=tuple(p for p in PHASES if p in args.only) if args.only else PHASES,
    )


# -- measuring helpers ----------------------------------------------------------------------
class RssSampler:
    """Samples the VmRSS of a process tree (the server and all its descendants, e.g. the API
    worker processes) every `interval` seconds in a thread: the peak of the sum, and each
    process's own peak."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.each: dict[int, int] = {}  # pid -> its peak VmRSS seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total = 0
        for p in servers.tree(self.pid):
            rss = servers.status_kib(p, "VmRSS")
            total += rss
            self.each[p] = max(self.each.get(p, 0), rss)
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass
class Cpu:
    """CPU seconds over one measurement: the server's process tree, the Postgres backends of
    its database, the bench's own clients (incl. wrk), and the whole machine."""

    wall: float = 0.0
    server: float = 0.0
    postgres: float = 0.0
    clients: float = 0.0
    machine: float = 0.0

    @property
    def other(self) -> float:
        return max(0.0, self.machine - self.server - self.postgres - self.clients)

    def cores(self, what: str) -> float:
        return getattr(self, what) / self.wall if self.wall else 0.0


@contextlib.contextmanager
def cpu_meter(server: servers.Server, into: dict[str, Cpu], phase: str):
    def snap() -> tuple[float, ...]:
        return (
            time.monotonic(),
            servers.tree_cpu(server.pid),
            servers.postgres_cpu(server.database) if server.database else 0.0,
            servers.own_cpu(),
            servers.machine_busy(),
        )

    before = snap()
    yield
    after = snap()
    into[phase] = Cpu(*(a - b for a, b in zip(after, before, strict=True)))


def wait_quiet(limit: float, threshold: float = 0.3) -> tuple[float, float]:
    """Wait (at most `limit` s) until the rest of the machine uses < `threshold` cores over
    half a second; returns (seconds waited, cores the rest used in the last window)."""
    t0 = time.monotonic()
    while True:
        b0, o0 = servers.machine_busy(), servers.own_cpu()
        time.sleep(0.5)
        others = (servers.machine_busy() - b0 - (servers.own_cpu() - o0)) / 0.5
        waited = time.monotonic() - t0
        if others < threshold or waited >= limit:
            return waited, others


@dataclass
class Result:
    label: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    cpu: dict[str, Cpu] = field(default_factory=dict)
    profiles: dict[str, list[str]] = field(default_factory=dict)
    details: dict[str, list[str]] = field(default_factory=dict)
    busy_starts: int = 0
    waited: float = 0.0

    def add(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def summarize(self) -> None:
        """Each figure from its runs: the median; a bound's worst run (RSS); counts summed."""
        for key, values in self.samples.items():
            self.figures[key] = AGGREGATE.get(key, statistics.median)(values)


AGGREGATE: dict[str, Callable[[list[float]], float]] = {
    "rss_peak_mib": max,
    "images_lost": sum,
    "images_push_errors": sum,
    "manifest_errors": sum,
}


_seed = [1000]


def next_seed() -> int:
    _seed[0] += 1
    return _seed[0]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _runs(values: list[float], spec: str = ".0f") -> str:
    return "/".join(format(v, spec) for v in values)


# -- the phases -----------------------------------------------------------------------------
def _run_suffix(cfg: Config, rep: int) -> str:
    return f" #{rep + 1}" if cfg.reps > 1 else ""


def phase_rss(server: servers.Server, cfg: Config, res: Result, rep: int) -> None:
    """Push one big blob (monolithic, streamed); the server's RSS meanwhile. The first run
    meets the freshly started server."""
    suffix = _run_suffix(cfg, rep)
    seed = next_seed()
    digest = workload.blob_digest(seed, cfg.big)
    pid = server.pid
    procs = servers.tree(pid)
    if rep == 0:
        res.figures["rss_idle_mib"] = servers.tree_rss_kib(pid) / 1024
    c = workload.Client(server.url)
    # the token before the measurement: signing in checks a password with argon2id, which
    # takes 64 MiB for a moment (not part of the push; at most 2 such checks run at once)
    c.authorize("bench/big")
    idle = {p: servers.status_kib(p, "VmRSS") for p in procs}
    hwm_before = {p: servers.status_kib(p, "VmHWM") for p in procs}
    with cpu_meter(server, res.cpu, "big push (RSS)" + suffix), RssSampler(pid) as sampler:
        t0 = time.monotonic()
        timing = workload.push_monolithic(c, "bench/big", seed, cfg.big, digest)
        elapsed = time.monotonic() - t0
    c.close()
    res.notes["big push" + suffix] = (
        f"{cfg.big // MiB} MiB in {elapsed:.2f}s; answered {1e3 * timing['tail_s']:.0f} ms "
        "after the last byte"
    )
    # A process's own peak (VmHWM) may fall between two samples: where it rose during the
    # push, count it instead of that process's highest sample (an upper bound if several
    # processes peaked at different moments).
    procs = servers.tree(pid)
    hwm_after = {p: servers.status_kib(p, "VmHWM") for p in procs}
    bound = sum(
        hwm_after[p] if hwm_after[p] > hwm_before.get(p, 0) else sampler.each.get(p, 0)
        for p in procs
    )
    res.add("rss_peak_mib", max(sampler.peak, bound) / 1024)
    res.add("big_push_mbps", cfg.big / elapsed / MB)
    res.figures["rss_hwm_mib"] = sum(hwm_after.values()) / 1024
    res.figures["processes"] = len(procs)
    res.notes["RSS by process (MiB)" + suffix] = "; ".join(
        f"{servers.role(p)} {p}: idle {idle.get(p, 0) / 1024:.1f}, peak sampled "
        f"{sampler.each.get(p, 0) / 1024:.1f}, VmHWM {hwm_after[p] / 1024:.1f}"
        for p in procs
    )


def phase_monolithic(server: servers.Server, cfg: Config, res: Result, rep: int) -> None:
    """POST + one streamed PUT; with `pull` selected, that blob pulled right after (no sync
    in between: a client pulling what was just pushed), then pulled again."""
    suffix = _run_suffix(cfg, rep)
    c = workload.Client(server.url)
    c.authorize("bench/blob")  # the token before the measurement
    seed = next_seed()
    digest = workload.blob_digest(seed, cfg.blob)
    with cpu_meter(server, res.cpu, "push monolithic" + suffix):
        t0 = time.monotonic()
        timing = workload.push_monolithic(c, "bench/blob", seed, cfg.blob, digest)
        res.add("push_mono_mbps", cfg.blob / (time.monotonic() - t0) / MB)
    res.add("mono_tail_ms", 1e3 * timing["tail_s"])
    # The first pull right after the push (Distribution serves it from the page cache it
    # filled, CYP Registry from the last GiB it wrote, storage.page_cache), then again.
    keys = (("pull_mbps", "pull"), ("pull_again_mbps", "pull again"))
    for key, what in keys if "pull" in cfg.only else ():
        with cpu_meter(server, res.cpu, what + suffix):
            t0 = time.monotonic()
            got = c.download(f"/v2/bench/blob/blobs/{digest}")
            res.add(key, cfg.blob / (time.monotonic() - t0) / MB)
        if got != cfg.blob:
            raise RuntimeError(f"pulled {got} bytes of {cfg.blob}")
    c.close()
    res.notes["monolithic PUT: answered after its last byte (ms)"] = _runs(
        res.samples["mono_tail_ms"]
    )


def phase_chunked(server: servers.Server, cfg: Config, res: Result, rep: int) -> None:
    """POST, PATCHes of cfg.chunk bytes with Content-Range, an empty closing PUT."""
    suffix = _run_suffix(cfg, rep)
    c = workload.Client(server.url)
    c.authorize("bench/blob")
    seed = next_seed()
    digest = workload.blob_digest(seed, cfg.blob)
    with cpu_meter(server, res.cpu, "push chunked" + suffix):
        t0 = time.monotonic()
        timing = workload.push_chunked(c, "bench/blob", seed, cfg.blob, digest, cfg.chunk)
        res.add("push_chunked_mbps", cfg.blob / (time.monotonic() - t0) / MB)
    c.close()
    res.add("chunked_tail_ms", 1e3 * timing["tail_s"])
    res.notes["chunked upload: its closing PUT took (ms)"] = _runs(res.samples["chunked_tail_ms"])


def phase_images(server: servers.Server, cfg: Config, res: Result, rep: int) -> None:
    """cfg.images small images by cfg.push_workers workers; then every tag listed and every
    manifest GET checked; CPU per image: the server's process tree and its Postgres backends
    (Distribution: its own process)."""
    suffix = _run_suffix(cfg, rep)
    plan = workload.image_plan(cfg.images, cfg.repos, rep + 1)
    phase = "push images" + suffix
    with cpu_meter(server, res.cpu, phase):
        seconds, pushed, lat = workload.push_images(
            server.url, plan, cfg.push_workers, cfg.client_procs
        )
    check = workload.verify_images(server.url, pushed)
    cpu = res.cpu[phase]
    res.add("images_per_s", len(plan) / seconds)
    res.add("images_lost", check["unlisted"] + check["bad_get"])
    res.add("images_push_errors", check["push_errors"])
    res.add("cpu_ms_per_image", 1e3 * (cpu.server + cpu.postgres) / len(plan))
    if server.database:
        res.add("cpu_pg_ms_per_image", 1e3 * cpu.postgres / len(plan))
    res.details[f"image push{suffix}: latency by request"] = workload.latency_lines(lat)
    res.notes[f"images{suffix}"] = (
        f"{check['images']} pushed in {seconds:.2f}s; push errors {check['push_errors']}, "
        f"tags missing from tags/list {check['unlisted']}, manifest GET failures "
        f"{check['bad_get']}; CPU {cpu.server:.2f}s server, {cpu.postgres:.2f}s Postgres"
    )
    errors = sorted({p[3] for p in pushed if p[3]})
    if errors:
        res.notes[f"image push errors{suffix}"] = "; ".join(errors[:3])


MANIFEST_PATH = "/v2/bench/app0/manifests/v1.0"  # the first image of the images phase


def ensure_image(url: str) -> None:
    """Push the image the manifest GETs ask for, unless the images phase already did."""
    c = workload.Client(url)
    status, _, _ = c.request("GET", MANIFEST_PATH, headers={"Accept": workload.ACCEPT})
    if status == 404:
        workload.push_image(c, workload.make_image(*workload.image_plan(1, 1, 1)[0]))
    c.close()


def manifest_load(url: str, cfg: Config, wrk: str | None, seconds: float) -> workload.Load:
    # a token for the repository GET (pull) as admin; none for a server that asks for none
    headers = workload.auth_headers(url)
    if wrk:
        return workload.run_wrk(wrk, url, cfg.connections, seconds, headers=headers)
    return workload.run_pyload(url, cfg.connections, seconds, headers=headers)


def phase_manifests(server: servers.Server, cfg: Config, res: Result, rep: int, wrk) -> None:
    suffix = _run_suffix(cfg, rep)
    ensure_image(server.url)
    c = workload.Client(server.url)
    for _ in range(50):  # warm up (caches, connection pools)
        status, _, _ = c.request("GET", MANIFEST_PATH, headers={"Accept": workload.ACCEPT})
        if status != 200:
            raise RuntimeError(f"manifest GET before the load: HTTP {status}")
    c.close()
    with cpu_meter(server, res.cpu, "manifest GETs" + suffix):
        load = manifest_load(server.url + MANIFEST_PATH, cfg, wrk, cfg.seconds)
    res.add("manifest_rps", load.rps)
    res.add("manifest_p50_ms", load.p50_ms)
    res.add("manifest_p99_ms", load.p99_ms)
    res.add("manifest_errors", load.errors)
    res.notes["manifests"] = (
        f"{load.tool}, {cfg.connections} connections, {cfg.seconds:.0f}s per run; errors "
        f"{_runs(res.samples['manifest_errors'])}"
    )


Phase = Callable[[servers.Server, Config, Result, int], None]


def steps(cfg: Config, wrk: str | None) -> list[tuple[str, Phase]]:
    """The selected measurements, in order: (what, phase)."""
    only = cfg.only
    out: list[tuple[str, Phase]] = []
    if "rss" in only:
        out.append((f"RSS while pushing {cfg.big // MiB} MiB", phase_rss))
    if "monolithic" in only or "pull" in only:
        pulls = " and its pulls" if "pull" in only else ""
        out.append((f"{cfg.blob // MiB} MiB monolithic push{pulls}", phase_monolithic))
    if "chunked" in only:
        chunks = f"{cfg.blob // MiB} MiB chunked push ({cfg.chunk // MiB} MiB PATCHes)"
        out.append((chunks, phase_chunked))
    if "images" in only:
        out.append((f"{cfg.images} images", phase_images))
    if "manifests" in only:
        out.append(("manifest GETs", lambda s, c, r, n: phase_manifests(s, c, r, n, wrk)))
    return out


def measure(
    kinds: list[tuple[str, Callable[[Path], servers.Server]]],
    cfg: Config,
    root: Path,
    wrk: str | None,
) -> list[Result]:
    pairs: list[tuple[servers.Server, Result]] = []
    try:
        for label, make in kinds:
            workdir = root / label.replace(" ", "-")
            workdir.mkdir(parents=True)
            server = make(workdir)
            pairs.append((server, Result(label)))
            say(f"== starting {label}")
            server.start()

        def each(rep: int, what: str, phase: Phase) -> None:
            for server, res in pairs if rep % 2 == 0 else pairs[::-1]:
                # Write back every dirty page first: otherwise a measurement pays for the
                # writeback of what the one before left in the page cache (Distribution never
                # fsyncs, so its data is flushed by the kernel during whatever runs next).
                os.sync()
                waited, others = wait_quiet(cfg.quiet_wait)
                res.waited += waited
                busy = others >= 0.3
                res.busy_starts += busy
                tail = f" (machine busy: others use {others:.1f} cores)" if busy else ""
                say(f"  {res.label}: {what}{tail}")
                try:
                    phase(server, cfg, res, rep)
                except Exception:
                    say(f"{res.label} log tail:\n{server.log_tail()}")
                    raise

        for what, phase in steps(cfg, wrk):
            for rep in range(cfg.reps):
                each(rep, f"{what}, run {rep + 1}", phase)
        for server, res in pairs:
            if not server.alive():
                raise RuntimeError(f"{res.label} died:\n{server.log_tail()}")
    finally:
        for server, _ in pairs:
            server.close()
            servers.remove(server.workdir)
    for _, res in pairs:
        res.summarize()
    return [res for _, res in pairs]


def diagnose(
    cfg: Config, root: Path, wrk: str | None, py_spy: str | None, measured: dict[str, float]
) -> Result:
    """Where CYP Registry's time goes: a fresh instrumented server (timers around the steps
    of each path), each load run again while py-spy samples it. Figures measured here are not
    results (the profiler and the timers cost a little)."""
    workdir = root / "diagnose"
    workdir.mkdir(parents=True)
    server = servers.Ours(workdir, instrument=True, workers=cfg.api_workers)
    res = Result(cyp_label(cfg))
    say(f"== {res.label} (instrumented, py-spy): where the time goes")
    server.start()
    try:

        def run(name: str, seconds: float, action: Callable[[], object]) -> None:
            wait_quiet(cfg.quiet_wait)
            say(f"  {name}")
            before = instrumented.read(server.stats)
            out = workdir / f"profile-{len(res.profiles)}.txt"
            spy = (
                profiling.record(py_spy, server.pid, seconds, out, tree=cfg.api_workers > 1)
                if py_spy
                else None
            )
            if spy:
                time.sleep(0.5)
            action()
            if spy:
                err = profiling.wait(spy, seconds + 60)
                res.profiles[name] = profiling.summary(profiling.parse(out))
                if err:
                    res.profiles[name].append(f"py-spy: {err}")
            time.sleep(1.0)  # the timers are written every 0.5 s
            res.details[f"timers: {name}"] = instrumented.diff(
                instrumented.read(server.stats), before
            )

        plan = workload.image_plan(cfg.images, cfg.repos, 1)
        guess = cfg.images / max(measured.get("images_per_s", 1.0), 1.0)
        run(
            "image pushes",
            max(2.0, min(guess, 30.0)),
            lambda: workload.push_images(server.url, plan, cfg.push_workers, cfg.client_procs),
        )
        url = f"{server.url}/v2/bench/app0/manifests/v1.0"
        seconds = 4.0 if cfg.quick else 8.0
        run("manifest GETs", seconds, lambda: manifest_load(url, cfg, wrk, seconds + 1))

        def blobs() -> None:
            c = workload.Client(server.url)
            seed, seed2 = next_seed(), next_seed()
            digest = workload.blob_digest(seed, cfg.blob)
            digest2 = workload.blob_digest(seed2, cfg.blob)
            workload.push_monolithic(c, "bench/blob", seed, cfg.blob, digest)
            workload.push_chunked(c, "bench/blob", seed2, cfg.blob, digest2, cfg.chunk)
            c.close()

        guess = 2 * cfg.blob / MB / max(measured.get("push_mono_mbps", 1.0), 1.0) + 2
        run("blob pushes (one monolithic, one chunked)", max(2.0, min(guess, 30.0)), blobs)
        if not server.alive():
            raise RuntimeError(f"instrumented server died:\n{server.log_tail()}")
    finally:
        server.close()
        servers.remove(workdir)
    return res


# -- the report -----------------------------------------------------------------------------
ROWS = [
    # key, label, unit, target: ratio ours/dist, "zero", ("abs", MiB) or None; format
    ("push_mono_mbps", "blob push, monolithic (POST + streamed PUT)", "MB/s", 1.5, ".0f"),
    ("push_chunked_mbps", "blob push, chunked (PATCH + PUT)", "MB/s", 1.5, ".0f"),
    ("pull_mbps", "blob pull (GET) right after its push", "MB/s", 0.8, ".0f"),
    ("pull_again_mbps", "the same blob pulled again", "MB/s", None, ".0f"),
    ("manifest_rps", "manifest GET by tag", "req/s", 2.0, ".0f"),
    ("manifest_p50_ms", "manifest GET p50 latency", "ms", None, ".2f"),
    ("manifest_p99_ms", "manifest GET p99 latency", "ms", None, ".2f"),
    ("images_per_s", "small images pushed", "images/s", 1.0, ".1f"),
    ("cpu_ms_per_image", "CPU per small image (server + its Postgres)", "ms", None, ".1f"),
    ("cpu_pg_ms_per_image", "of which Postgres", "ms", None, ".1f"),
    ("images_lost", "images lost (unlisted or GET failed)", "", "zero", ".0f"),
    ("big_push_mbps", "big blob push (the RSS phase)", "MB/s", None, ".0f"),
    ("rss_idle_mib", "server RSS before the big push", "MiB", None, ".1f"),
    ("rss_peak_mib", "server RSS peak during the big push", "MiB", ("abs", 128.0), ".1f"),
    ("rss_hwm_mib", "server VmHWM (process lifetime peak)", "MiB", None, ".1f"),
]


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def cyp_label(cfg: Config) -> str:
    """Our registry's short label in notes and tables: `cyp x1`, `cyp x2`, ..."""
    return f"cyp x{cfg.api_workers}"


def cyp_column(cfg: Config) -> str:
    n = cfg.api_workers
    return f"CYP Registry ({n} process{'es' if n > 1 else ''})"


def table(ours: Result, dist: Result | None, cfg: Config) -> tuple[list[str], list[str]]:
    lines = [
        f"| measure | unit | {cyp_column(cfg)} | Distribution | ratio ours/dist | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    verdicts = []
    for key, label, unit, target, spec in ROWS:
        if key == "rss_peak_mib":
            label = f"server RSS peak during a {cfg.big // MiB} MiB push"
        if key.startswith("rss_") and cfg.api_workers > 1:
            label += " (ours: whole process tree)"
        a = ours.figures.get(key)
        b = dist.figures.get(key) if dist else None
        if a is None and b is None:
            continue  # not measured (--only)
        ratio = a / b if a is not None and b else None
        if target is None:
            goal, met = "", ""
        elif target == "zero":
            goal, met = "0", "yes" if a == 0 else "NO"
        elif isinstance(target, tuple):
            goal = f"<= {target[1]:.0f} MiB"
            met = "yes" if a is not None and a <= target[1] else "NO"
            if cfg.big < 2048 * MiB:
                met += f" (at {cfg.big // MiB} MiB, not 2 GiB)"
        else:
            goal = f">= {target}x"
            met = "n/a (no Distribution)" if ratio is None else ("yes" if ratio >= target else "NO")
        if goal:
            shown = f"{_fmt(ratio, '.2f')}x" if isinstance(target, float) else _fmt(a, spec)
            verdicts.append(f"{label}: {goal} -> {met} ({shown})")
        lines.append(
            f"| {label} | {unit} | {_fmt(a, spec)} | {_fmt(b, spec)} | "
            f"{_fmt(ratio, '.2f')}{'x' if ratio is not None else ''} | {goal} | {met} |"
        )
    return lines, verdicts


def cpu_table(results: list[Result]) -> list[str]:
    lines = [
        "| registry | measurement | wall s | server (process tree) | its Postgres backends | "
        "bench clients "
        "(incl. wrk) | rest of the machine |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for phase, c in r.cpu.items():
            lines.append(
                f"| {r.label} | {phase} | {c.wall:.2f} | {c.cores('server'):.2f} | "
                f"{c.cores('postgres'):.2f} | {c.cores('clients'):.2f} | {c.cores('other'):.2f} |"
            )
    return lines


def machine(tool: str, cfg: Config, ours: Result) -> list[str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=servers.ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=servers.ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if dirty:
        commit += " plus uncommitted changes"
    dist = servers.Distribution
    dist_version = dist.version() if dist.available() else "not installed"
    return [
        f"- machine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Linux {platform.release()}",
        f"- CYP Registry at commit {commit or '?'}, Python {platform.python_version()}, "
        f"`cyp-registry serve --workers {cfg.api_workers}` (uvicorn, httptools, uvloop) on the "
        "machine's Postgres (a new database) and NATS (a new stream)",
        serving(cfg, ours),
        f"- Distribution {dist_version}: filesystem storage, delete enabled, inmemory blob "
        "descriptor cache",
        f"- clients on the same machine: manifest GETs with {tool}; everything else Python "
        "http.client keep-alive connections (image pushes: 2 processes x 8 threads)",
    ]


def serving(cfg: Config, ours: Result) -> str:
    n = cfg.api_workers
    procs = ours.figures.get("processes")
    seen = f" ({procs:.0f} process{'es' if procs > 1 else ''} seen)" if procs else ""
    if n == 1:
        return (
            f"- {cyp_column(cfg)}: the serve process serves the API and runs the views' projection "
            f"and the NATS relay{seen}; its RSS and CPU are that process's (and any child's)"
        )
    return (
        f"- {cyp_column(cfg)}: {n} uvicorn API worker processes (spawned by multiprocessing) "
        "accept on one port; the serve process supervises them and multiprocessing starts a "
        "resource tracker; the views' projection runner and the NATS relay run in one elected "
        f"worker each. RSS and CPU are summed over the whole process tree{seen}"
    )


def report(results: list[Result], diag: Result | None, cfg: Config, tool: str) -> str:
    ours = results[0]
    dist = results[1] if len(results) > 1 else None
    rows, verdicts = table(ours, dist, cfg)
    n = cfg.api_workers
    out = [f"# CYP Registry benchmark: `--workers {n}` ({n} API process{'es' if n > 1 else ''})"]
    out += [""]
    out += machine(tool, cfg, ours)
    out += [
        f"- sizes: blobs {cfg.blob // MiB} MiB, chunks {cfg.chunk // MiB} MiB, big blob "
        f"{cfg.big // MiB} MiB, {cfg.images} images over {cfg.repos} repositories with "
        f"{cfg.push_workers} workers, manifest GETs {cfg.connections} connections for "
        f"{cfg.seconds:.0f}s; medians of {cfg.reps} run(s), the registries alternating"
        f"{' (--quick)' if cfg.quick else ''}; dirty pages written back (`sync`) before each"
        " measurement, outside its timing",
        "",
        *rows,
        "",
        "## Targets",
        "",
        *[f"- {v}" for v in verdicts],
        "",
        "## Runs",
        "",
        "The machine is shared: other work may run on the same 2 cores during a measurement "
        "(the last column of the CPU table shows how much did).",
        "",
    ]
    for r in results:
        for key, note in r.notes.items():
            out.append(f"- {r.label} {key}: {note}")
        out.append(
            f"- {r.label}: waited {r.waited:.0f}s in all for a quiet machine; "
            f"{r.busy_starts} measurement(s) started while other work used >= 0.3 cores"
        )
    out += ["", "## CPU during each measurement (cores busy on average)", ""]
    out += [*cpu_table(results), ""]
    for r in results:
        for name, lines in r.details.items():
            out += [f"### {r.label}: {name}", "", "```", *lines, "```", ""]
    if diag:
        out += [
            "## Where CYP Registry's time goes",
            "",
            f"A fresh server (`--workers {cfg.api_workers}`) with timers wrapped around the "
            "steps of each path "
            "(bench/instrumented.py; calls overlap, so totals exceed the wall time), each load "
            "run again while py-spy samples the server"
            + (
                " (all its processes: the timers add up over the API workers, py-spy runs with "
                "--subprocesses)"
                if cfg.api_workers > 1
                else ""
            )
            + ". py-spy leaves out idle threads and "
            "threads waiting on a lock or queue for work; native time counts in the Python "
            "frame that made the call: `RequestResponseCycle.send` is uvloop's socket write to "
            "the client, `_send_query_prepared` libpq sending a query to Postgres, "
            "`Connection.wait` a worker thread waiting for Postgres, `Runner.run` uvloop's own C "
            "code (reading sockets, running callbacks).",
            "",
        ]
        for name, lines in diag.details.items():
            out += [f"### {name}", "", "```", *(lines or ["(nothing recorded)"]), "```", ""]
        for name, lines in diag.profiles.items():
            out += [f"### py-spy: {name}", "", "```", *lines, "```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    p.add_argument(
        "--workers", type=int, default=1, help="API processes of our server (serve --workers N)"
    )
    p.add_argument("--markdown", type=Path, help="also write the report to this file")
    p.add_argument("--no-profile", action="store_true", help="no py-spy in the diagnostic pass")
    p.add_argument("--no-diagnose", action="store_true", help="skip the diagnostic pass")
    p.add_argument("--no-install", action="store_true", help="never apt-get/pip install tools")
    p.add_argument("--no-distribution", action="store_true", help="measure CYP Registry only")
    p.add_argument("--blob-mib", type=int, help="blob size (default 512, quick 64)")
    p.add_argument("--big-mib", type=int, help="RSS-phase blob (default 2048, quick 512)")
    p.add_argument("--chunk-mib", type=int, default=8, help="PATCH chunk size (default 8)")
    p.add_argument("--reps", type=int, help="runs of each measurement, median kept (3, quick 1)")
    p.add_argument(
        "--only", type=lambda v: v.split(","), help=f"measure only these: {','.join(PHASES)}"
    )
    p.add_argument("--images", type=int, help="small images to push (default 200, quick 50)")
    p.add_argument("--connections", type=int, default=64, help="manifest GET connections")
    p.add_argument("--seconds", type=float, help="manifest GET duration (default 10, quick 3)")
    p.add_argument(
        "--quiet-wait", type=float, help="max seconds to wait for a quiet machine (30, quick 5)"
    )
    args = p.parse_args(argv)
    cfg = config(args)

    if not servers.reachable("127.0.0.1", 5432) or not servers.reachable("127.0.0.1", 4222):
        say("needs Postgres on 127.0.0.1:5432 and NATS (JetStream) on 127.0.0.1:4222")
        return 2
    wrk = workload.find_wrk(cfg.install)
    tool = "wrk -t2" if wrk else "a Python asyncio client (2 processes)"
    py_spy = profiling.find_py_spy(cfg.install) if cfg.profile else None
    if cfg.profile and not py_spy:
        say("py-spy not available: no profiles")
    if args.workers < 1:
        p.error("--workers must be >= 1")
    kinds: list[tuple[str, Callable[[Path], servers.Server]]] = [
        (cyp_label(cfg), lambda d: servers.Ours(d, workers=cfg.api_workers))
    ]
    if not args.no_distribution and servers.Distribution.available():
        kinds.append(("distribution", servers.Distribution))
    elif not args.no_distribution:
        say(f"{servers.DISTRIBUTION_BIN} not installed: CYP Registry only")

    diag = None
    with tempfile.TemporaryDirectory(prefix="cyp-bench-") as tmp:
        results = measure(kinds, cfg, Path(tmp), wrk)
        if not args.no_diagnose:
            diag = diagnose(cfg, Path(tmp), wrk, py_spy, results[0].figures)
    text = report(results, diag, cfg, tool)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
