"""The blob paths only, side by side with Distribution: monolithic push, chunked push, the
first pull right after a push and the same pull again, each a median of `--reps` runs (the
registries alternating), with each PATCH's latency and the server's CPU per measurement.

    .venv/bin/python -m bench.blob_paths [--reps 3] [--blob-mib 512] [--chunk-mib 8]

Quicker than `bench.run` when only the write and read paths of blobs are being changed;
the phases are bench.run's (`phase_blobs`), measured the same way."""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import profiling, servers, workload
from bench.run import MB, Result, cpu_meter, next_seed, say, wait_quiet
from bench.workload import MiB

KEYS = [
    ("push_mono_mbps", "blob push, monolithic (MB/s)"),
    ("push_chunked_mbps", "blob push, chunked (MB/s)"),
    ("pull_mbps", "blob pull right after its push (MB/s)"),
    ("pull_again_mbps", "the same blob pulled again (MB/s)"),
    ("patch_ms", "PATCH latency, median (ms)"),
    ("close_ms", "closing PUT of the chunked upload (ms)"),
    ("server_cpu_mono_s", "server CPU, monolithic push (s)"),
    ("server_cpu_chunked_s", "server CPU, chunked push (s)"),
    ("server_sys_chunked_s", "server kernel CPU, chunked push (s)"),
    ("server_cpu_pull_s", "server CPU, first pull (s)"),
]


def kernel_cpu(pid: int) -> float:
    """System CPU seconds of a process tree (the kernel's share: page cache, copies, disk)."""
    total = 0.0
    for p in servers.tree(pid):
        try:
            raw = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        total += int(raw[raw.rindex(")") + 2 :].split()[12]) / os.sysconf("SC_CLK_TCK")
    return total


def run_once(
    server: servers.Server, size: int, chunk: int, res: Result, spy: str | None = None
) -> None:
    c = workload.Client(server.url)
    c.authorize("bench/blob")
    seed, seed2 = next_seed(), next_seed()
    digest = workload.blob_digest(seed, size)
    digest2 = workload.blob_digest(seed2, size)
    with cpu_meter(server, res.cpu, "mono"):
        t0 = time.monotonic()
        workload.push_monolithic(c, "bench/blob", seed, size, digest)
        res.add("push_mono_mbps", size / (time.monotonic() - t0) / MB)
    out = server.workdir / "chunked.spy"
    sampler = profiling.record(spy, server.pid, 600, out) if spy else None
    sys0 = kernel_cpu(server.pid)
    with cpu_meter(server, res.cpu, "chunked"):
        t0 = time.monotonic()
        timing = workload.push_chunked(c, "bench/blob", seed2, size, digest2, chunk)
        res.add("push_chunked_mbps", size / (time.monotonic() - t0) / MB)
    res.add("server_sys_chunked_s", kernel_cpu(server.pid) - sys0)
    if sampler:
        sampler.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        profiling.wait(sampler, 30)
        print("\n".join(profiling.summary(profiling.parse(out), top=25)))
    res.add("patch_ms", 1e3 * statistics.median(timing["patch_s"]))
    res.add("close_ms", 1e3 * timing["tail_s"])
    # as bench.run: the monolithic blob is pulled after the chunked push, then again
    for key, what in (("pull_mbps", "pull"), ("pull_again_mbps", "again")):
        with cpu_meter(server, res.cpu, what):
            t0 = time.monotonic()
            got = c.download(f"/v2/bench/blob/blobs/{digest}")
            res.add(key, size / (time.monotonic() - t0) / MB)
        if got != size:
            raise RuntimeError(f"pulled {got} bytes of {size}")
    c.close()
    for key, phase in (("mono", "mono"), ("chunked", "chunked"), ("pull", "pull")):
        res.add(f"server_cpu_{key}_s", res.cpu[phase].server)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.blob_paths", description=__doc__)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--blob-mib", type=int, default=512)
    p.add_argument("--chunk-mib", type=int, default=8)
    p.add_argument("--quiet-wait", type=float, default=10.0)
    p.add_argument("--no-distribution", action="store_true")
    p.add_argument("--py-spy", help="py-spy binary: profile our server's first chunked push")
    args = p.parse_args(argv)
    size, chunk = args.blob_mib * MiB, args.chunk_mib * MiB
    kinds: list[tuple[str, type[servers.Server]]] = [("cyp", servers.Ours)]
    if not args.no_distribution and servers.Distribution.available():
        kinds.append(("distribution", servers.Distribution))
    with tempfile.TemporaryDirectory(prefix="cyp-blobs-") as tmp:
        pairs: list[tuple[servers.Server, Result]] = []
        try:
            for label, make in kinds:
                workdir = Path(tmp) / label
                workdir.mkdir()
                server = make(workdir)
                pairs.append((server, Result(label)))
                server.start()
            for rep in range(args.reps):
                for server, res in pairs if rep % 2 == 0 else pairs[::-1]:
                    os.sync()  # as bench.run: no measurement pays the one before's writeback
                    wait_quiet(args.quiet_wait)
                    say(f"  {res.label}: run {rep + 1}")
                    spy = args.py_spy if rep == 0 and res.label == "cyp" else None
                    run_once(server, size, chunk, res, spy)
        finally:
            for server, _ in pairs:
                server.close()
    ours = pairs[0][1]
    dist = pairs[1][1] if len(pairs) > 1 else None
    print(f"{args.blob_mib} MiB blobs, {args.chunk_mib} MiB PATCHes, medians of {args.reps}")
    print("| measure | cyp | distribution | ratio | cyp runs |\n|---|---:|---:|---:|---|")
    for key, label in KEYS:
        a = statistics.median(ours.samples[key])
        b = statistics.median(dist.samples[key]) if dist else None
        ratio = f"{a / b:.2f}x" if b else ""
        runs = "/".join(f"{v:.0f}" for v in ours.samples[key])
        shown = f"{b:.1f}" if b is not None else ""
        print(f"| {label} | {a:.1f} | {shown} | {ratio} | {runs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
