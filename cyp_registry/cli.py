"""`cyp-registry`: serve, worker, migrate, replay."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

from cyp_registry import __version__
from cyp_registry.settings import Settings, describe


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.load()
    for key in ("host", "port", "data_dir", "api_workers"):
        value = getattr(args, key, None)
        if value is not None:
            setattr(settings, key, Path(value) if key == "data_dir" else value)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings


def _leave(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT outside uvicorn: leave through the `with Stack` so the embedded
    Postgres and NATS are stopped. uvicorn restores this handler when it has shut down and
    then raises the signal that stopped it again, which lands here too."""
    signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the cleanup short
    raise SystemExit(0)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cyp_registry.wiring import Stack, build_app

    settings = _settings(args)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _leave)
    options = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
        access_log=False,
    )
    if settings.api_workers <= 1:
        with Stack(settings) as stack:
            uvicorn.Server(uvicorn.Config(build_app(stack), **options)).run()
        return 0
    # Several API processes on one socket: this one owns the embedded services and hands
    # their URLs to the children; the views' runner and the relay elect one child each.
    with Stack(settings, domain=False) as stack:
        os.environ["CYP_DATABASE_URL"] = stack.database_url
        os.environ["CYP_NATS_URL"] = stack.nats_url
        os.environ["CYP_DATA_DIR"] = str(settings.data_dir)
        uvicorn.run(
            "cyp_registry.wiring:app_from_environment",
            factory=True,
            workers=settings.api_workers,
            **options,
        )
    return 0


def worker(args: argparse.Namespace) -> int:
    """Projection runner and NATS relay without the HTTP API (compose's `workers` service)."""
    from cyp_registry.wiring import Stack, Workers

    settings = _settings(args)

    async def main(stack: Stack) -> None:
        workers = Workers(stack)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
        await workers.start()
        await stopped.wait()
        await workers.stop()

    with Stack(settings) as stack:
        asyncio.run(main(stack))
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    from cyp_registry.wiring import Stack

    settings = _settings(args)
    with Stack(settings, need_nats=False) as stack:
        # Stack applies the migrations on start; report the state.
        import psycopg

        with psycopg.connect(stack.database_url) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY 1")]
    print(f"schema is current: {', '.join(names)}")
    return 0


def replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cyp_registry.wiring import Stack
    from projections.runner import VIEWS, ProjectionRunner, ViewsBusy

    settings = _settings(args)
    unknown = [v for v in args.views if v not in VIEWS]
    if unknown:
        print(f"unknown view(s): {', '.join(unknown)}; known: {', '.join(VIEWS)}", file=sys.stderr)
        return 2
    views = [VIEWS[v] for v in (args.views or VIEWS)]
    with Stack(settings, need_nats=False) as stack:
        head = stack.registry.recorder.max_notification_id() or 0
        runner = ProjectionRunner(stack.registry, stack.database_url, views, batch_size=2000)
        started = time.monotonic()
        with tqdm(total=head, unit="event", desc="replay", file=sys.stderr) as bar:
            try:
                count = runner.rebuild(progress=bar.update)
            except ViewsBusy as exc:
                print(f"cannot replay: {exc}; stop it first", file=sys.stderr)
                return 1
        elapsed = max(time.monotonic() - started, 1e-9)
    print(
        f"replayed {count} events into {len(views)} views "
        f"({', '.join(v.name for v in views)}) in {elapsed:.2f}s "
        f"({count / elapsed:.0f} events/s)"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cyp-registry",
        description="CYP Registry: an event-sourced private OCI container registry.",
        epilog=describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the registry (API, views, relay)")
    s.add_argument("--host", default=None, help="default 0.0.0.0")
    s.add_argument("--port", type=int, default=None, help="default 8080")
    s.add_argument("--data-dir", default=None, help="default ./data")
    s.add_argument(
        "--workers", dest="api_workers", type=int, default=None, help="API processes (default 1)"
    )
    s.set_defaults(func=serve)

    w = sub.add_parser("worker", help="run the projection runner and the NATS relay only")
    w.add_argument("--data-dir", default=None)
    w.set_defaults(func=worker)

    m = sub.add_parser("migrate", help="apply the database migrations")
    m.add_argument("--data-dir", default=None)
    m.set_defaults(func=migrate_command)

    r = sub.add_parser("replay", help="drop and rebuild views from the event log")
    r.add_argument("--data-dir", default=None)
    r.add_argument("views", nargs="*", help="views to rebuild (default: all)")
    r.set_defaults(func=replay)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
