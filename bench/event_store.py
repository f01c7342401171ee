"""What serialized event inserts cost (issue 9): commands per second through the event store.

    .venv/bin/python -m bench.event_store [--writers 16] [--seconds 10] [--reps 3] [--markdown F]

The registry's insert function takes `LOCK TABLE … IN EXCLUSIVE MODE` (cyp_registry.eventstore)
so that ids become visible in commit order; eventsourcing's own insert function takes no lock,
which lets concurrent transactions commit ids out of order (readers then skip events). Both run
here in the same process, alternating, each on a fresh database of the machine's Postgres:
`--writers` threads each run `link_blob` commands on their own repositories (one transaction of
1-3 events each, what a blob PUT does) for `--seconds`. Reported: commands/s and events/s, and
the ratio serialized / unserialized; the best of `--reps` runs is kept for each.
"""

from __future__ import annotations

import argparse
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from bench.servers import ADMIN_URL
from cyp_registry.wiring import eventsourcing_env
from domain.caller import Caller
from domain.registry import Registry
from migrations import migrate
from tests.support import create_database, drop_database

WHO = Caller("bench", "127.0.0.1")
VARIANTS = {"serialized (LOCK TABLE)": True, "unserialized (library function)": False}


@contextmanager
def registry(serialized: bool, writers: int) -> Iterator[tuple[Registry, str]]:
    url = create_database(ADMIN_URL)
    try:
        migrate(url)
        env = eventsourcing_env(url)
        env.update(POSTGRES_POOL_SIZE=str(writers), POSTGRES_MAX_OVERFLOW="4")
        if not serialized:
            env.pop("APPLICATION_RECORDER_TOPIC")
        app = Registry(env=env)
        try:
            yield app, url
        finally:
            app.close()
    finally:
        drop_database(ADMIN_URL, url)


def run_once(serialized: bool, writers: int, seconds: float) -> tuple[float, float]:
    """Commands/s and events/s of `writers` threads linking blobs for `seconds`."""
    with registry(serialized, writers) as (app, url):
        done = [0] * writers
        stop = threading.Event()

        def writer(w: int) -> None:
            i = 0
            while not stop.is_set():
                digest = "sha256:" + hashlib.sha256(f"{w}-{i}".encode()).hexdigest()
                app.link_blob(f"bench/w{w}/r{i % 50}", digest, 1, WHO)
                i += 1
            done[w] = i

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        with psycopg.connect(url) as conn:
            events = conn.execute("SELECT count(*) FROM registry_events").fetchone()[0]
        return sum(done) / elapsed, events / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.event_store", description=__doc__)
    p.add_argument("--writers", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--markdown", help="also write the report to this file")
    args = p.parse_args(argv)
    best: dict[str, tuple[float, float]] = {}
    for rep in range(args.reps):
        for name, serialized in VARIANTS.items():
            cps, eps = run_once(serialized, args.writers, args.seconds)
            print(f"rep {rep + 1}: {name}: {cps:.0f} commands/s, {eps:.0f} events/s", flush=True)
            if cps > best.get(name, (0.0, 0.0))[0]:
                best[name] = (cps, eps)
    serial, free = (best[name] for name in VARIANTS)
    lines = [
        f"## Event store: {args.writers} concurrent writers,"
        f" best of {args.reps} x {args.seconds:g} s",
        "",
        "| insert path | commands/s | events/s |",
        "|---|---:|---:|",
        *(f"| {name} | {c:.0f} | {e:.0f} |" for name, (c, e) in best.items()),
        "",
        f"Serialized / unserialized: {serial[0] / free[0]:.2f}x commands/s.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
