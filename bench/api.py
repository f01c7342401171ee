"""The management API at scale: seed 10,000 repositories and 100,000 tags through the event
path, then time list, search and details over HTTP (target: p95 < 50 ms each).

    .venv/bin/python -m bench.api [--quick] [--repos N] [--tags-per-repo N] [--requests N]
                                  [--markdown FILE]

A fresh `cyp-registry serve` (a new Postgres database and JetStream stream, removed after)
starts first; the seeding then writes domain aggregates straight into its event store,
hundreds per `Registry.save` (one transaction each) — the events the push path would record,
with realistic shapes: per repository a few base layers shared with other repositories, and
per tag a config blob and a layer of its own; and pulls of every tag, flushed on three days
(the `pulls` view then holds a row per tag, which /api adds to every page). The server's
projection runner builds every view from those events, as it does for pushes; the bench
waits until they are current. Each image's config (creation time, labels) is written into
the blob store, since details read it.

Then one client (keep-alive, sequential: latency, not throughput) times each request shape,
as the system admin and as a user who reads three of the hundred organisation namespaces
(the permission filter in SQL); last, the searches again without the trigram index, as on
the embedded Postgres, which has no pg_trgm (`--keep-trgm` skips that). Postgres on
127.0.0.1:5432 and NATS on 127.0.0.1:4222.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.servers import Ours
from cyp_registry.wiring import eventsourcing_env
from domain.content import BlobLink, Manifest, Repository, Tag
from domain.manifests import OCI_MANIFEST
from domain.namespaces import Namespace
from domain.pulls import PullBatch, Pulls
from domain.registry import Registry
from tests.auth import ADMIN

CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ORGS = 100
WORDS = "api web auth billing search cart media mail queue cache gateway report admin".split()
TARGET_MS = 50.0
WHO = ("bench", "127.0.0.1")


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# -- seeding through the event path ----------------------------------------------------------
def repository_name(i: int) -> str:
    return f"org{i % ORGS}/{WORDS[i % len(WORDS)]}-{i // len(WORDS)}/service-{i}"


def tag_names(i: int, count: int) -> list[str]:
    names = ["latest"] + [f"v1.{j}.{i % 7}" for j in range(count - 2)]
    return (names + [f"sha-{sha(str(i))[7:14]}"])[:count]


def _config(repository: str, tag: str, created: str) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Labels": {"org.opencontainers.image.source": repository, "tag": tag}},
            "rootfs": {"type": "layers", "diff_ids": []},
        },
        sort_keys=True,
    ).encode()


def _write_blob(blobs: Path, digest: str, data: bytes) -> None:
    """Into the blob store's layout (blobs/<alg>/<xx>/<hex>); a seed needs no fsync."""
    algorithm, encoded = digest.split(":", 1)
    folder = blobs / algorithm / encoded[:2]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / encoded).write_bytes(data)


def repository_aggregates(i: int, tags: int, blobs: Path, rng: random.Random) -> list[Any]:
    """What pushing `tags` images to repository i records: the repository, its blob links,
    manifests and tags (and the config blobs written to the store)."""
    name = repository_name(i)
    found: list[Any] = [Repository.create(name, *WHO)]
    base = [
        {"mediaType": LAYER, "digest": sha(f"base-{b}"), "size": 20_000_000 + b * 1_000_003}
        for b in rng.sample(range(50), 3)
    ]
    found += [BlobLink.create(name, d["digest"], d["size"], *WHO) for d in base]
    for tag in tag_names(i, tags):
        created = f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}T12:00:00Z"
        config = _config(name, tag, created)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        _write_blob(blobs, config_digest, config)
        own = {
            "mediaType": LAYER,
            "digest": sha(f"{name}:{tag}"),
            "size": rng.randint(1, 9) * 10**6,
        }
        layers = [*base, own]
        found.append(BlobLink.create(name, config_digest, len(config), *WHO))
        found.append(BlobLink.create(name, own["digest"], own["size"], *WHO))
        digest = sha(f"manifest {name}:{tag}")
        found.append(
            Manifest.create(
                name,
                digest,
                size=500 + len(layers) * 100,
                media_type=OCI_MANIFEST,
                config={"mediaType": CONFIG, "digest": config_digest, "size": len(config)},
                layers=layers,
                manifests=[],
                subject=None,
                artifact_type=None,
                annotations={},
                actor=WHO[0],
                client=WHO[1],
            )
        )
        found.append(Tag.create(name, tag, digest, *WHO))
    pulls = None
    for days_ago in (14, 3, 0):  # three flushes of an API process, days apart
        until = datetime(2026, 12, 10, 12, tzinfo=UTC) - timedelta(days=days_ago)
        counts = {tag: rng.randint(1, 50) for tag in tag_names(i, tags)}
        flush = PullBatch(name, counts, until, until, "bench:1", f"{i}-{days_ago}")
        pulls = Pulls.record(pulls, flush, "system", "")
    found.append(pulls)
    return found


def seed(database_url: str, blobs: Path, repos: int, tags: int, batch: int = 20) -> dict:
    """Save the registry's aggregates, `batch` repositories per transaction."""
    registry = Registry(env=eventsourcing_env(database_url))
    rng = random.Random(4)
    started, events = time.monotonic(), 0
    try:
        orgs = [Namespace.open(f"org{n}", "", False, False, *WHO) for n in range(ORGS)]
        registry.save(*orgs)
        for first in range(0, repos, batch):
            aggregates: list[Any] = []
            for i in range(first, min(first + batch, repos)):
                aggregates += repository_aggregates(i, tags, blobs, rng)
            recordings = registry.save(*aggregates)
            events += len(recordings)
            if first % (batch * 50) == 0:
                print(
                    f"  seeded {first + batch}/{repos} repositories ({events} events)", flush=True
                )
    finally:
        registry.close()
    elapsed = time.monotonic() - started
    return {"events": events, "seconds": elapsed, "rate": events / elapsed}


def wait_for_views(database_url: str, timeout: float = 3600) -> float:
    started = time.monotonic()
    last = 0.0
    while time.monotonic() - started < timeout:
        with psycopg.connect(database_url, autocommit=True) as conn:
            head = conn.execute(
                "SELECT coalesce(max(notification_id), 0) FROM registry_events"
            ).fetchone()[0]
            low = conn.execute("SELECT coalesce(min(position), 0) FROM view_positions").fetchone()[
                0
            ]
        if low >= head:
            return time.monotonic() - started
        if time.monotonic() - last > 15:
            print(f"  views at {low}/{head}", flush=True)
            last = time.monotonic()
        time.sleep(1)
    raise RuntimeError("views did not catch up")


# -- measuring ---------------------------------------------------------------------------------
def api_token(url: str, username: str, password: str) -> str:
    answer = httpx.post(f"{url}/api/auth/login", json={"username": username, "password": password})
    answer.raise_for_status()
    return answer.json()["data"]["token"]


def timed(client: httpx.Client, paths: Callable[[int], str], count: int) -> list[float]:
    times = []
    for n in range(count):
        path = paths(n)
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
    return times


def summary(name: str, times: list[float]) -> dict:
    ordered = sorted(times)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {
        "name": name,
        "n": len(times),
        "p50": statistics.median(times),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": ordered[-1],
    }


def deep_cursors(client: httpx.Client, path: str, pages: int) -> list[str]:
    """Cursors of successive pages (to time pages deep into the list)."""
    cursors, cursor = [], None
    for _ in range(pages):
        answer = client.get(path + (f"&cursor={cursor}" if cursor else "")).json()["data"]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
        cursors.append(cursor)
    return cursors


def measure(
    url: str, token: str, repos: int, tags: int, count: int, who: str, search_only: bool = False
) -> list[dict]:
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {token}"}
    results = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(5):  # warm the connection and the caches of the plans
            client.get("/api/images")

        def run(name: str, paths: Callable[[int], str]) -> None:
            results.append(summary(f"{who}: {name}", timed(client, paths, count)))

        def detail(n: int) -> str:
            i = rng.randrange(repos)
            if who != "admin":  # a repository of a namespace the reader may read
                i = rng.randrange(repos // ORGS) * ORGS + rng.choice(READABLE)
            return f"/api/images/{repository_name(i)}/{rng.choice(tag_names(i, tags))}"

        if not search_only:
            run("list, first page (name)", lambda n: "/api/images?limit=50")
            run("list, by last update", lambda n: "/api/images?sort=updated&limit=50")
            run("list, by size", lambda n: "/api/images?sort=size&limit=50")
            run("list, one namespace", lambda n: f"/api/images?namespace=org{n % ORGS}&limit=50")
            cursors = deep_cursors(client, "/api/images?sort=updated&limit=50", 40)
            run(
                "list, pages 2-41 (cursor)",
                lambda n: f"/api/images?sort=updated&limit=50&cursor={cursors[n % len(cursors)]}",
            )
            run("repositories, first page", lambda n: "/api/repositories?limit=50")
        searches = {
            "search, frequent tag (latest: 10%)": lambda n: "latest",
            "search, frequent word (1/13 repositories)": lambda n: WORDS[n % len(WORDS)],
            "search, one repository": lambda n: f"service-{rng.randrange(repos)}/",
            "search, one character": lambda n: "aeiou"[n % 5],
            "search, one namespace prefix": lambda n: f"ORG{n % ORGS}/",
            "search, no match": lambda n: f"zz{n}zz",
        }
        for label, term in searches.items():
            run(label, lambda n, term=term: f"/api/images/search?q={term(n)}&limit=50")
        if not search_only:
            run("details (random image)", detail)
            run("history, first page", lambda n: "/api/history?limit=50")
            run(
                "history, one repository",
                lambda n: f"/api/history?repository={detail(n).split('/', 3)[3].rsplit('/', 1)[0]}",
            )
            run("system info", lambda n: "/api/system/info")
    return results


READABLE = [3, 14, 15]  # the organisations the bench user reads


def add_reader(url: str, admin: str) -> str:
    """A user who reads three organisations: every list filters by namespace in SQL."""
    password = "bench-reader-password"
    auth = {"Authorization": f"Bearer {admin}"}
    body = {"username": "reader", "password": password, "role": "user"}
    httpx.post(f"{url}/api/users", json=body, headers=auth).raise_for_status()
    for org in READABLE:
        member = {"username": "reader", "role": "reader"}
        answer = httpx.post(f"{url}/api/namespaces/org{org}/members", json=member, headers=auth)
        answer.raise_for_status()
    return api_token(url, "reader", password)


def table(results: list[dict]) -> str:
    lines = [
        "| request | n | p50 ms | p95 ms | p99 ms | max ms | p95 < 50 ms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        met = "yes" if r["p95"] < TARGET_MS else "**no**"
        lines.append(
            f"| {r['name']} | {r['n']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f}"
            f" | {r['max']:.1f} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 repositories, 10,000 tags")
    parser.add_argument("--repos", type=int, help="repositories (default 10000; quick 1000)")
    parser.add_argument("--tags-per-repo", type=int, default=10)
    parser.add_argument("--requests", type=int, help="requests per shape (default 300; quick 60)")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    parser.add_argument(
        "--keep-trgm",
        action="store_true",
        help="skip the searches without the trigram index (as on the embedded Postgres)",
    )
    parser.add_argument(
        "--pause", type=float, default=0, help="seconds to keep the server up afterwards"
    )
    args = parser.parse_args()
    repos = args.repos or (1000 if args.quick else 10_000)
    count = args.requests or (60 if args.quick else 300)
    tags = args.tags_per_repo
    with tempfile.TemporaryDirectory(prefix="cyp-bench-api-") as tmp, Ours(Path(tmp)) as server:
        blobs = Path(tmp) / "cyp-data" / "blobs"
        print(f"seeding {repos} repositories x {tags} tags through the event store ...", flush=True)
        seeded = seed(server.database_url, blobs, repos, tags)
        print(f"  {seeded['events']} events in {seeded['seconds']:.0f} s ({seeded['rate']:.0f}/s)")
        projected = wait_for_views(server.database_url)
        rate = seeded["events"] / max(seeded["seconds"] + projected, 1e-9)
        print(f"  views current {projected:.0f} s after the seeding ({rate:.0f} events/s overall)")
        with psycopg.connect(server.database_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as autovacuum would soon after such a load
            counted = conn.execute(
                "SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM images)"
            ).fetchone()
        print(f"  views: {counted[0]} repositories, {counted[1]} tags")
        admin = api_token(server.url, *ADMIN)
        results = measure(server.url, admin, repos, tags, count, "admin")
        reader = add_reader(server.url, admin)
        results += measure(server.url, reader, repos, tags, count, "reader")
        if not args.keep_trgm:  # as on the embedded Postgres, which has no pg_trgm
            with psycopg.connect(server.database_url, autocommit=True) as conn:
                dropped = conn.execute(
                    "SELECT to_regclass('images_search_trgm') IS NOT NULL"
                ).fetchone()[0]
                conn.execute("DROP INDEX IF EXISTS images_search_trgm")
            if dropped:
                label = "admin, no pg_trgm"
                results += measure(server.url, admin, repos, tags, count, label, True)
        if args.pause:
            print(table(results))
            print(f"keeping {server.url} ({server.database_url}) for {args.pause:.0f} s")
            time.sleep(args.pause)
    report = table(results)
    header = (
        f"{counted[0]} repositories, {counted[1]} tags ({seeded['events']} events seeded at"
        f" {seeded['rate']:.0f}/s; views current {projected:.0f} s later); {count} sequential"
        f" requests per shape, one keep-alive client; {os.cpu_count()} cores."
    )
    print()
    print(header)
    print(report)
    if args.markdown:
        args.markdown.write_text(f"# Management API benchmark\n\n{header}\n\n{report}\n")


if __name__ == "__main__":
    main()
