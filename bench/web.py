"""The web UI at scale: seed 10,000 repositories and 100,000 tags (bench/api.py's seeding,
through the event path), sign in through `/login`, then time every main page rendered
server-side (target: p95 < 100 ms each) and weigh the first visit (HTML + CSS + JS + icon:
target < 200 KB).

    .venv/bin/python -m bench.web [--quick] [--repos N] [--tags-per-repo N] [--requests N]
                                  [--markdown FILE]

One client (keep-alive, sequential: latency, not throughput), as the system admin and as a
user who reads three of the hundred organisation namespaces. Postgres on 127.0.0.1:5432 and
NATS on 127.0.0.1:4222.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from bench.api import (
    ORGS,
    READABLE,
    add_reader,
    api_token,
    repository_name,
    seed,
    summary,
    tag_names,
    timed,
    wait_for_views,
)
from bench.servers import Ours
from tests.auth import ADMIN

TARGET_MS = 100.0
FIRST_VISIT_KB = 200
READER = ("reader", "bench-reader-password")


def signed_in(url: str, who: tuple[str, str]) -> httpx.Client:
    """A client holding a web session, signed in through the form as a browser does."""
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/login", data={"username": who[0], "password": who[1], "csrf": csrf, "next": "/"}
    )
    if answer.status_code != 303 or "cyp_session" not in client.cookies:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text[:300]}")
    return client


def first_visit(url: str, who: tuple[str, str]) -> dict[str, int]:
    """Bytes a first visit transfers: the dashboard's HTML and what it loads (CSS, JS, icon)."""
    with signed_in(url, who) as client:
        html = client.get("/")
        sizes = {"/ (HTML)": len(html.content)}
        for asset in sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', html.text))):
            sizes[asset] = len(client.get(asset).content)
    return sizes


def pages(repos: int, tags: int, who: str, rng: random.Random) -> dict[str, Callable[[int], str]]:
    def image(n: int) -> tuple[str, str]:
        i = rng.randrange(repos)
        if who != "admin":  # a repository of a namespace the reader may read
            i = rng.randrange(repos // ORGS) * ORGS + rng.choice(READABLE)
        return repository_name(i), rng.choice(tag_names(i, tags))

    def detail(n: int) -> str:
        name, tag = image(n)
        return f"/images/{name}/{tag}"

    def repository(n: int) -> str:
        return f"/repositories/{image(n)[0]}"

    def timeline(n: int) -> str:
        name, tag = image(n)
        return f"/history/tags/{name}/{tag}"

    shapes = {
        "dashboard": lambda n: "/",
        "images, first page": lambda n: "/images",
        "images, by last update": lambda n: "/images?sort=updated",
        "images, search (frequent word)": lambda n: "/images?q=api",
        "images, one namespace": lambda n: f"/images?namespace=org{READABLE[n % 3]}",
        "repositories, first page": lambda n: "/repositories",
        "repository (its tags)": repository,
        "image details": detail,
        "history, first page": lambda n: "/history",
        "tag timeline": timeline,
        "access tokens": lambda n: "/tokens",
    }
    if who == "admin":
        shapes["users"] = lambda n: "/admin/users"
        shapes["namespaces"] = lambda n: "/admin/namespaces"
    return shapes


def measure(url: str, who: tuple[str, str], repos: int, tags: int, count: int) -> list[dict]:
    label = "admin" if who == ADMIN else "reader"
    results = []
    with signed_in(url, who) as client:
        for _ in range(5):  # warm the connection and the plans
            client.get("/images")
        for name, path in pages(repos, tags, label, random.Random(7)).items():
            results.append(summary(f"{label}: {name}", timed(client, path, count)))
    return results


def table(results: list[dict]) -> str:
    lines = [
        "| page | n | p50 ms | p95 ms | p99 ms | max ms | p95 < 100 ms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        met = "yes" if r["p95"] < TARGET_MS else "**no**"
        lines.append(
            f"| {r['name']} | {r['n']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f}"
            f" | {r['max']:.1f} | {met} |"
        )
    return "\n".join(lines)


def weights(sizes: dict[str, int]) -> str:
    total = sum(sizes.values())
    met = "yes" if total < FIRST_VISIT_KB * 1024 else "**no**"
    lines = ["| first visit | bytes |", "|---|---:|"]
    lines += [f"| {name} | {size:,} |" for name, size in sizes.items()]
    lines.append(f"| **total** (< {FIRST_VISIT_KB} KB: {met}) | **{total:,}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 repositories, 10,000 tags")
    parser.add_argument("--repos", type=int, help="repositories (default 10000; quick 1000)")
    parser.add_argument("--tags-per-repo", type=int, default=10)
    parser.add_argument("--requests", type=int, help="requests per page (default 200; quick 40)")
    parser.add_argument("--markdown", type=Path, help="also write the report here")
    args = parser.parse_args()
    repos = args.repos or (1000 if args.quick else 10_000)
    count = args.requests or (40 if args.quick else 200)
    tags = args.tags_per_repo
    with tempfile.TemporaryDirectory(prefix="cyp-bench-web-") as tmp, Ours(Path(tmp)) as server:
        blobs = Path(tmp) / "cyp-data" / "blobs"
        print(f"seeding {repos} repositories x {tags} tags through the event store ...", flush=True)
        seeded = seed(server.database_url, blobs, repos, tags)
        projected = wait_for_views(server.database_url)
        with psycopg.connect(server.database_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as autovacuum would soon after such a load
            counted = conn.execute(
                "SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM images)"
            ).fetchone()
        add_reader(server.url, api_token(server.url, *ADMIN))
        sizes = first_visit(server.url, ADMIN)
        results = measure(server.url, ADMIN, repos, tags, count)
        results += measure(server.url, READER, repos, tags, count)
    header = (
        f"{counted[0]} repositories, {counted[1]} tags ({seeded['events']} events; views"
        f" current {projected:.0f} s after seeding); {count} sequential requests per page, one"
        f" keep-alive client with a web session; {os.cpu_count()} cores."
    )
    report = f"{header}\n\n{table(results)}\n\n{weights(sizes)}\n"
    print()
    print(report)
    if args.markdown:
        args.markdown.write_text(f"# Web UI benchmark\n\n{report}")


if __name__ == "__main__":
    main()
