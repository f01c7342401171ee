"""Wiring: start or reach the backing services, build the domain, views, workers and app,
and hand each what it needs. The parts themselves live in their packages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import secrets
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from eventsourcing.utils import get_topic
from litestar import Litestar
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from api.access_log import AccessLog
from api.app import create_app
from api.auth.jwts import Tokens
from api.auth.signing_keys import KeyRing
from api.availability import DatabaseGate, guard_event_store
from api.proxies import TrustedProxies
from api.services import Services
from api.v2.blob_fastpath import BlobFastPath
from api.v2.fastpath import ManifestFastPath
from cyp_registry import __version__, embedded, eventstore, logs
from cyp_registry.settings import Settings
from domain.caller import SYSTEM
from domain.errors import RegistryError
from domain.identity import User
from domain.pulls import PullTally
from domain.registry import Registry
from domain.throttle import MAX_WINDOW
from migrations import migrate, schema_lock
from projections.waiter import PositionWaiter
from storage.filesystem import FilesystemStore
from storage.page_cache import default_budget
from workers.lifecycle import Workers
from workers.nats_probe import NatsProbe
from workers.projector import ProjectionRunner
from workers.pulls import PullFlusher
from workers.relay import Relay
from workers.uploads import purge_abandoned_uploads

log = logging.getLogger("cyp_registry")

# Seconds a request waits for a pooled database connection before it answers 503 (the
# pools' default is 30; a connection is normally free within milliseconds).
DATABASE_WAIT = 3
# Seconds the pools keep reconnecting with backoff before they give up and grow again on
# demand (their default, 5 min, can delay the recovery by as long as the outage lasted).
RECONNECT_FOR = 10.0
# Seconds a stopping API process waits for the views to show the pulls it recorded last (a
# courtesy: the views catch up with them whenever a projection runner runs again).
LAST_PULLS_SHOWN = 2.0


def eventsourcing_env(database_url: str) -> dict[str, str]:
    params = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": eventstore.FACTORY,
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_POOL_SIZE": "4",
        # the wait for a pooled connection (each try: the store retries a call ten times)
        "POSTGRES_CONNECT_TIMEOUT": str(DATABASE_WAIT),
        # One round trip per insert, through a function that serializes inserts until they
        # commit, so readers of "events after my position" never pass an id committed later.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
        "APPLICATION_RECORDER_TOPIC": eventstore.TOPIC,
        "CREATE_TABLE": "y",
        # Cached aggregates are fast-forwarded with one query instead of being rebuilt from
        # snapshot + events; copies are handed out, so a failed command leaves no trace.
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }


class Stack:
    """The backing services of one process: embedded ones are started here and stopped on exit."""

    def __init__(self, settings: Settings, *, need_nats: bool = True, domain: bool = True) -> None:
        self.settings = settings
        self.need_nats = need_nats
        self.domain = domain
        self._postgres: embedded.EmbeddedPostgres | None = None
        self._nats: embedded.EmbeddedNats | None = None
        self._supervisor: embedded.Supervisor | None = None
        self.database_url = settings.database_url or ""
        # Embedded: holds the NATS credentials; never log it or put it in an answer.
        self.nats_url = settings.nats_url or ""
        self.registry: Registry | None = None

    def __enter__(self) -> Stack:
        try:
            if not self.database_url:
                log.info("starting embedded postgres under %s", self.settings.meta_dir)
                self._postgres = embedded.EmbeddedPostgres(
                    self.settings.meta_dir, log_file=self.settings.logs_dir / "postgres.log"
                )
                self.database_url = self._postgres.start()
            if not self.nats_url and self.need_nats:
                log.info("starting embedded nats under %s", self.settings.nats_dir)
                self._nats = embedded.EmbeddedNats(
                    self.settings.nats_dir, log_file=self.settings.logs_dir / "nats.log"
                )
                self.nats_url = self._nats.start()
            children = [s for s in (self._postgres, self._nats) if s is not None]
            if children:
                self._supervisor = embedded.Supervisor(children).start()
            migrate(self.database_url)
            if self.domain:
                # The event store's tables are created here: one process at a time.
                with schema_lock(self.database_url):
                    self.registry = Registry(env=eventsourcing_env(self.database_url))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._supervisor is not None:  # first: nothing is restarted while it stops
            self._supervisor.stop()
        if self.registry is not None:
            self.registry.close()
        if self._nats is not None:
            self._nats.stop()
        if self._postgres is not None:
            self._postgres.stop()


def build_workers(stack: Stack) -> Workers:
    """The projection runner and the relay of this process, over its stack's services."""
    assert stack.registry is not None
    settings = stack.settings
    runner = ProjectionRunner(stack.registry, stack.database_url)
    relay = Relay(
        stack.registry,
        stack.database_url,
        stack.nats_url,
        settings.nats_stream,
        settings.nats_subject,
    )
    return Workers(runner, relay)


def app_from_environment() -> AccessLog:
    """The app of one of several API processes (`serve --workers N`): the parent started the
    backing services and passed their URLs on; this process closes its own stack on exit,
    and ends when the parent does (a kill -9 of it must not leave workers holding the port)."""
    if multiprocessing.parent_process() is not None:  # a worker uvicorn spawned
        embedded.die_with_parent()
    stack = Stack(Settings.load()).__enter__()
    return build_app(stack, close=stack.__exit__)


def _any_user(stack: Stack) -> bool:
    assert stack.registry is not None
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()[0]:
            return True
        # The view is empty: it may only lag the log (users added with the CLI before the
        # first start, a replay under way). Ask the log itself; this scan runs only while
        # there are no users in the view, i.e. on the first start.
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE topic = %s)").format(
            sql.Identifier(stack.registry.recorder.events_table_name)
        )
        return conn.execute(query, (get_topic(User.Registered),)).fetchone()[0]


def ensure_admin(stack: Stack) -> bool:
    """First start: with no users at all, register `admin` (role admin) with the password in
    CYP_ADMIN_PASSWORD, or a random one shown once (framed on stderr, in no log). Several
    replicas starting together race on the one `admin` aggregate: the loser's register finds
    it and changes nothing.
    Returns whether this process created the user."""
    assert stack.registry is not None
    if _any_user(stack):
        return False
    given = stack.settings.admin_password
    password = given or secrets.token_urlsafe(18)
    try:
        stack.registry.register_user("admin", password, "admin", SYSTEM)
    except RegistryError as exc:
        if exc.code == "USER_EXISTS":  # another replica was first
            return False
        raise SystemExit(
            f"cannot create the admin user: CYP_ADMIN_PASSWORD: {exc.message}"
        ) from None
    if given:
        log.warning("created user admin with the password in CYP_ADMIN_PASSWORD")
    else:
        logs.announce_password("admin", password)
        log.warning("created user admin with a generated password (shown on stderr, not logged)")
    return True


def cache_budget(settings: Settings) -> int:
    """Bytes of written blob data each API process leaves in the page cache."""
    if settings.blob_cache_mib >= 0:
        return settings.blob_cache_mib * 1024 * 1024
    return default_budget(settings.api_workers)


def build_app(stack: Stack, close: Any = None) -> AccessLog:
    settings = stack.settings
    assert stack.registry is not None
    try:
        trusted_proxies = TrustedProxies.parse(settings.trusted_proxies)
    except ValueError as exc:
        raise SystemExit(f"CYP_TRUSTED_PROXIES: {exc}") from None
    if not settings.pull_flush_seconds > 0:
        raise SystemExit("CYP_PULL_FLUSH_SECONDS: a number of seconds above 0")
    ensure_admin(stack)
    # Autocommit: a view query is one round trip, not BEGIN + SELECT + COMMIT.
    pool = AsyncConnectionPool(
        stack.database_url,
        min_size=1,
        max_size=8,
        open=False,
        kwargs={"autocommit": True, "connect_timeout": DATABASE_WAIT},
        timeout=DATABASE_WAIT,
        reconnect_timeout=RECONNECT_FOR,
    )
    # While Postgres is out of reach, requests answer 503 at once (api.availability).
    database = DatabaseGate(stack.database_url)
    guard_event_store(stack.registry.recorder.datastore, database, RECONNECT_FOR)
    database.on_recovery(pool.check)
    waiter = PositionWaiter(stack.database_url)
    probe = NatsProbe(stack.nats_url)
    workers = build_workers(stack) if settings.workers else None

    store = FilesystemStore(
        settings.blobs_dir,
        settings.max_uploads_per_user,
        settings.max_uploads_per_repository,
        cache_budget(settings),
    )
    # in every API process: each counts the pulls it answers (domain.pulls)
    pulls = PullTally()
    flusher = PullFlusher(stack.registry, pulls, settings.pull_flush_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await database.start()
        await pool.open()
        await probe.start()
        await waiter.start()
        if workers:
            workers.runner.listeners.append(waiter.projected)
            await workers.start()
        # in every API process: each holds the hash state of the sessions it opened
        purging = asyncio.create_task(
            purge_abandoned_uploads(store, settings.upload_ttl, settings.upload_purge_interval)
        )
        stop_flushing = asyncio.Event()
        flushing = asyncio.create_task(flusher.run(stop_flushing))
        try:
            yield
        finally:
            purging.cancel()
            # uvicorn answered the last requests: their pulls are recorded before it ends,
            # and shown (a runner still runs: this one's, or another replica's) if it is quick
            stop_flushing.set()
            await flushing
            await waiter.wait(flusher.position, LAST_PULLS_SHOWN, warn=False)
            await waiter.stop()
            if workers:
                await workers.stop()
            await probe.stop()
            await pool.close()
            await database.stop()
            if close is not None:
                close()

    keys = KeyRing(settings.keys_dir).load()
    tokens = Tokens(keys, settings.token_issuer, settings.token_service, settings.token_ttl)
    services = Services(
        tokens=tokens,
        public_url=settings.public_url,
        trusted_proxies=trusted_proxies,
        anonymous_pull=settings.anonymous_pull,
        refresh_ttl=settings.refresh_ttl,
        login_max_failures=settings.login_max_failures,
        login_window=min(settings.login_window, MAX_WINDOW),
        api_token_ttl=settings.api_token_ttl,
        registry=stack.registry,
        store=store,
        pulls=pulls,
        pool=pool,
        waiter=waiter,
        database=database,
        version=__version__,
        nats_ok=probe.ok,
        write_wait=settings.write_wait,
        relay_stream=settings.nats_stream,
        relay_max_lag=settings.relay_max_lag,
        lifespan=[lifespan],
    )
    # manifest GETs and HEADs, blob HEADs and uploads with a token that grants them skip
    # Litestar (api.v2.fastpath, api.v2.blob_fastpath); the access log sees every request
    app = BlobFastPath(ManifestFastPath(create_app(services), services), services)
    return AccessLog(app, trusted_proxies)
