"""`cyp-registry`: serve, worker, migrate, replay, user, keys."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from cyp_registry import __version__, logs
from cyp_registry.settings import Settings, describe


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.load()
    for key in ("host", "port", "data_dir", "api_workers"):
        value = getattr(args, key, None)
        if value is not None:
            setattr(settings, key, Path(value) if key == "data_dir" else value)
    logs.configure(settings.log_level, settings.log_format)
    return settings


def _leave(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT outside uvicorn: leave through the `with Stack` so the embedded
    Postgres and NATS are stopped. uvicorn restores this handler when it has shut down and
    then raises the signal that stopped it again, which lands here too."""
    signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the cleanup short
    raise SystemExit(0)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cyp_registry.http_protocol import http_protocol
    from cyp_registry.wiring import Stack, build_app

    settings = _settings(args)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _leave)
    options = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
        access_log=False,  # ours: api.access_log
        log_config=logs.config(settings.log_level, settings.log_format),
        # idle clients, and a word on non-HTTP bytes (cyp_registry.http_protocol)
        http=http_protocol(settings.idle_timeout),
        # the client address is ours to work out (api.proxies, CYP_TRUSTED_PROXIES): uvicorn
        # would believe X-Forwarded-For from 127.0.0.1
        proxy_headers=False,
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
    from cyp_registry.wiring import Stack, build_workers

    settings = _settings(args)

    async def main(stack: Stack) -> None:
        workers = build_workers(stack)
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
    from projections.catalog import VIEWS
    from workers.projector import ProjectionRunner, ViewsBusy

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


def _read_password() -> str:
    """The password from standard input (as `docker login --password-stdin`: one trailing
    newline is not part of it). Never from argv, where `ps` and shell history see it."""
    password = sys.stdin.read()
    password = password.removesuffix("\n").removesuffix("\r")
    if not password:
        raise ValueError("no password on standard input")
    return password


def user_command(args: argparse.Namespace) -> int:
    from cyp_registry.wiring import Stack
    from domain.caller import CLI
    from domain.errors import RegistryError

    settings = _settings(args)
    caller = CLI
    name = args.name
    address = getattr(args, "address", None)
    if address is not None:
        import ipaddress

        try:
            args.address = str(ipaddress.ip_address(address))
        except ValueError:
            print(f"error: {address!r} is not an IP address", file=sys.stderr)
            return 1
    try:
        password = _read_password() if args.action in ("add", "passwd") else ""
    except ValueError as exc:
        print(f"error: {exc} (pipe it in: --password-stdin)", file=sys.stderr)
        return 1
    with Stack(settings, need_nats=False) as stack:
        registry = stack.registry
        assert registry is not None
        try:
            if args.action == "add":
                registry.register_user(name, password, args.role, caller)
                print(f"created user {name} (role {args.role})")
            elif args.action == "passwd":
                registry.change_password(name, password, caller)
                print(f"changed the password of {name}")
            elif args.action == "role":
                done = registry.change_role(name, args.role, caller)
                print(f"{name} {'now has' if done else 'already has'} role {args.role}")
            elif args.action == "disable":
                done = registry.disable_user(name, caller)
                print(f"{'disabled' if done else 'already disabled:'} user {name}")
            elif args.action == "unlock":
                address = args.address or ""
                registry.unlock_user(name, address, caller)
                also = f" and of address {address}" if address else ""
                print(f"lifted the sign-in throttle of user {name}{also}")
            else:
                done = registry.enable_user(name, caller)
                print(f"{'enabled' if done else 'already enabled:'} user {name}")
        except RegistryError as exc:
            detail = f"user {name} already exists" if exc.code == "USER_EXISTS" else None
            if exc.code == "USER_UNKNOWN":
                detail = f"no user {name}"
            print(f"error: {detail or exc.message}", file=sys.stderr)
            return 1
    return 0


def keys_command(args: argparse.Namespace) -> int:
    """Token signing keys under <data_dir>/keys: list, rotate (a new current key; the old
    ones keep verifying), remove KID (tokens it signed stop verifying)."""
    from api.auth.signing_keys import KeyRing

    settings = _settings(args)
    ring = KeyRing(settings.keys_dir)
    if args.action == "rotate":
        ring.load(create=False)
        key = ring.rotate()
        print(f"new current signing key {key.kid}; older keys still verify until removed")
    elif args.action == "remove":
        ring.load(create=False)
        try:
            removed = ring.remove(args.kid)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if not removed:
            print(f"error: no key {args.kid}", file=sys.stderr)
            return 1
        print(f"removed signing key {args.kid}")
    else:
        ring.load(create=False)
        kids = ring.kids()
        for kid in kids:
            print(f"{kid}{'  (current)' if kid == kids[-1] else ''}")
        if not kids:
            print("no signing keys yet (the first start makes one)")
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

    u = sub.add_parser("user", help="manage users (add, passwd, role, disable, enable, unlock)")
    actions = u.add_subparsers(dest="action", required=True)
    stdin_help = "read the password from standard input (required: never on the command line)"
    a = actions.add_parser("add", help="register a user")
    a.add_argument("name")
    a.add_argument("--role", choices=("admin", "user"), default="user", help="default: user")
    a.add_argument("--password-stdin", action="store_true", required=True, help=stdin_help)
    pw = actions.add_parser("passwd", help="set a user's password")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", required=True, help=stdin_help)
    ro = actions.add_parser("role", help="set a user's role")
    ro.add_argument("name")
    ro.add_argument("role", choices=("admin", "user"))
    actions.add_parser("disable", help="stop a user from signing in").add_argument("name")
    actions.add_parser("enable", help="let a disabled user sign in again").add_argument("name")
    un = actions.add_parser(
        "unlock", help="lift the sign-in throttle of a user (after too many failed sign-ins)"
    )
    un.add_argument("name")
    un.add_argument("--address", default=None, help="also lift the throttle of this client address")
    for action in actions.choices.values():
        action.add_argument("--data-dir", default=None)
    u.set_defaults(func=user_command)

    k = sub.add_parser("keys", help="token signing keys (list, rotate, remove)")
    key_actions = k.add_subparsers(dest="action", required=True)
    key_actions.add_parser("list", help="list the keys, newest (current) last")
    key_actions.add_parser("rotate", help="add a new current key; old ones keep verifying")
    key_actions.add_parser("remove", help="delete a key: its tokens stop verifying").add_argument(
        "kid"
    )
    for action in key_actions.choices.values():
        action.add_argument("--data-dir", default=None)
    k.set_defaults(func=keys_command)
    return p


def _kid_as_operand(argv: list[str]) -> list[str]:
    """A kid is base64url and may begin with '-', which argparse would take for an option:
    `keys remove <kid>` passes it after `--`, as `keys list` prints it."""
    for i in range(len(argv) - 2):
        if argv[i : i + 2] == ["keys", "remove"] and "--" not in argv:
            rest = argv[i + 2 :]
            kids = [a for a in rest if a.startswith("-") and not a.startswith("--") and a != "-h"]
            if len(kids) == 1:
                return [*argv[: i + 2], *(a for a in rest if a != kids[0]), "--", kids[0]]
    return argv


def main(argv: list[str] | None = None) -> int:
    from cyp_registry.embedded import EmbeddedError

    args = parser().parse_args(_kid_as_operand(sys.argv[1:] if argv is None else argv))
    try:
        return args.func(args)
    except EmbeddedError as exc:  # e.g. the data dir's NATS belongs to another serve
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
