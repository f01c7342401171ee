"""What the fast paths (api.v2.fastpath, api.v2.blob_fastpath) save: server CPU per request,
answered below Litestar or by the handler, one client sending one request at a time.

    .venv/bin/python -m bench.fast_paths [--rounds 6] [--blobs 500]

The same requests go both ways: as a client sends them (the fast path takes them), and with
`via=handler` added to the query (an odd query: the fast path leaves the request to Litestar
and the handler; an answer the same in every byte, tests/test_blob_fastpath.py). Measured:
a manifest GET by tag (200: a pull, counted), a blob's HEAD that finds nothing (404), and a
blob pushed as `docker push` does it (HEAD, POST, PUT of 64 KiB with ?digest=). Rounds
alternate which way goes first; medians."""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.servers import Ours, tree_cpu
from bench.workload import Client, make_image, push_image

REPO = "fast/paths"


def _query(via: bool, query: str = "") -> str:
    parts = [p for p in (query, "via=handler" if via else "") if p]
    return "?" + "&".join(parts) if parts else ""


def get_manifest(c: Client, via: bool) -> None:
    status, _, _ = c.request("GET", f"/v2/{REPO}/manifests/v1{_query(via)}")
    assert status == 200, status


def head_missing(c: Client, via: bool) -> None:
    status, _, _ = c.request("HEAD", f"/v2/{REPO}/blobs/sha256:{'0' * 64}{_query(via)}")
    assert status == 404, status


def push_blob(c: Client, via: bool) -> None:
    data = os.urandom(64 * 1024)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, _, _ = c.request("HEAD", f"/v2/{REPO}/blobs/{digest}{_query(via)}")
    assert status == 404, status
    status, headers, _ = c.request("POST", f"/v2/{REPO}/blobs/uploads/{_query(via)}")
    assert status == 202, status
    location = headers["Location"]
    status, _, body = c.request("PUT", location + _query(via, f"digest={digest}"), data)
    assert status == 201, (status, body)


def _rounded(values: list[float]) -> list[float]:
    return [round(x, 3) for x in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--gets", type=int, default=3000)
    parser.add_argument("--heads", type=int, default=3000)
    parser.add_argument("--blobs", type=int, default=500)
    args = parser.parse_args()
    kinds = {
        "GET manifest by tag": (get_manifest, args.gets),
        "HEAD blob (404)": (head_missing, args.heads),
        "blob push": (push_blob, args.blobs),
    }
    with tempfile.TemporaryDirectory() as folder, Ours(Path(folder)) as server:
        client = Client(server.url)
        client.authorize(REPO)
        push_image(client, make_image(REPO, "v1", seed=1))
        print(f"server pid {server.pid}; {args.rounds} rounds, medians")
        for kind, (fn, count) in kinds.items():
            for _ in range(20):  # warm both ways up
                fn(client, False)
                fn(client, True)
            cpu: dict[bool, list[float]] = {False: [], True: []}
            wall: dict[bool, list[float]] = {False: [], True: []}
            for n in range(args.rounds):
                for via in (False, True) if n % 2 == 0 else (True, False):
                    time.sleep(0.5)  # let the views and background syncs settle
                    c0, w0 = tree_cpu(server.pid), time.perf_counter()
                    for _ in range(count):
                        fn(client, via)
                    cpu[via].append((tree_cpu(server.pid) - c0) / count * 1000)
                    wall[via].append((time.perf_counter() - w0) / count * 1000)
            fast, handler = statistics.median(cpu[False]), statistics.median(cpu[True])
            print(
                f"{kind}: server CPU {fast:.3f} ms fast path, {handler:.3f} ms handler"
                f" ({handler - fast:+.3f} ms, {(handler - fast) / handler:.0%} of it saved);"
                f" wall {statistics.median(wall[False]):.2f} / {statistics.median(wall[True]):.2f}"
                f" ms; runs {_rounded(cpu[False])} / {_rounded(cpu[True])}"
            )
        client.close()


if __name__ == "__main__":
    main()
