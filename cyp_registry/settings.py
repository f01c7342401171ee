"""Settings from CYP_* environment variables, optionally from a TOML file (CYP_CONFIG)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

HELP = {
    "data_dir": "where blobs (<data>/blobs), the embedded Postgres (<data>/meta) and NATS"
    " (<data>/nats) live, and their logs (<data>/logs)",
    "database_url": "postgresql://… of an external Postgres; unset: start an embedded one",
    "nats_url": "nats://… of an external NATS with JetStream; unset: start an embedded one",
    "host": "address to listen on",
    "port": "port to listen on",
    "nats_stream": "JetStream stream the relay publishes events to",
    "nats_subject": "subject prefix of published events (<prefix>.<event type>)",
    "relay_max_lag": "seconds stored events may wait for the relay (to reach NATS) before"
    " /health answers `degraded` naming the relay (0: never)",
    "workers": "run the projection runner and the NATS relay inside `serve` (true/false)",
    "api_workers": "API processes `serve` runs on the one port (more use more cores)",
    "write_wait": "seconds a write waits for the views to reach it before answering",
    "log_level": "logging level (info: also one access-log line per request)",
    "log_format": "text or json (one JSON object per line) for every log line on stderr",
    "idle_timeout": "seconds a client may send nothing while its request's headers or body"
    " are incomplete before it gets 408 and the connection is closed (not a total time: an"
    " upload that keeps sending may take as long as it needs)",
    "admin_password": "password of the `admin` user created on the first start (when there are"
    " no users yet); unset: a random one, shown once on stderr (framed; in no log)",
    "token_ttl": "seconds a bearer token from /token is valid",
    "api_token_ttl": "seconds an /api session token (POST /api/auth/login) is valid",
    "refresh_ttl": "seconds a refresh token (docker login's identity token) is valid",
    "login_max_failures": "failed sign-ins from one client address within CYP_LOGIN_WINDOW"
    " after which sign-ins from it answer 429; one username from addresses that did not sign"
    " in as it lately may fail 10 times as often (0: no throttle)",
    "login_window": "seconds failed sign-ins count against the throttle (at most 86400)",
    "token_service": "the `service` of the Bearer challenge and the tokens' audience",
    "token_issuer": "the `iss` of the tokens the registry signs",
    "trusted_proxies": "comma-separated IPs/CIDRs of reverse proxies whose X-Forwarded-For"
    " (rightmost untrusted hop) and X-Forwarded-Proto are believed; unset: none, the"
    " connection's peer is the client",
    "anonymous_pull": "let callers who did not sign in pull from public namespaces"
    " (true/false; off: zero trust, every request signs in)",
    "public_url": "scheme://host[:port] clients reach the registry at (the token realm is"
    " <public_url>/token); unset: taken from each request",
    "upload_ttl": "seconds an upload session may go untouched before it is purged (its"
    " partial file and hash state)",
    "upload_purge_interval": "seconds between two purges of abandoned upload sessions",
    "max_uploads_per_user": "upload sessions one user (or token, robot) may have open in one"
    " API process; more: 429 (0: no cap)",
    "max_uploads_per_repository": "upload sessions one repository may have open in one API"
    " process; more: 429 (0: no cap)",
    "pull_flush_seconds": "seconds between two recordings of the pulls (manifest GETs) one"
    " API process counted: one event per repository pulled in the interval, and a last one"
    " when the process stops",
    "blob_cache_mib": "MiB of the blob data it wrote lately one API process leaves in the"
    " page cache (older written data is dropped as new data is written, so writes reuse its"
    " pages); -1: 1 GiB, less where the API processes would together keep more than an"
    " eighth of the memory; 0: drop all once written",
}


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    data_dir: Path = Path("./data")
    database_url: str | None = None
    nats_url: str | None = field(default=None, repr=False)  # may hold credentials
    host: str = "0.0.0.0"
    port: int = 8080
    nats_stream: str = "CYP_EVENTS"
    nats_subject: str = "cyp.events"
    relay_max_lag: float = 30.0
    workers: bool = True
    api_workers: int = 1
    write_wait: float = 10.0
    log_level: str = "info"
    log_format: str = "text"
    idle_timeout: float = 60.0
    admin_password: str | None = field(default=None, repr=False)
    token_ttl: int = 300
    refresh_ttl: int = 30 * 24 * 3600
    login_max_failures: int = 5
    login_window: int = 300
    api_token_ttl: int = 12 * 3600
    token_service: str = "cyp-registry"
    token_issuer: str = "cyp-registry"
    public_url: str = ""
    trusted_proxies: str = ""
    anonymous_pull: bool = False
    upload_ttl: int = 24 * 3600
    upload_purge_interval: float = 600.0
    max_uploads_per_user: int = 100
    max_uploads_per_repository: int = 100
    blob_cache_mib: int = -1
    pull_flush_seconds: float = 10.0
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, environ: dict[str, str] | None = None) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        config = environ.get("CYP_CONFIG")
        if config:
            with open(config, "rb") as fh:
                values.update(tomllib.load(fh))
        for f in fields(cls):
            key = f"CYP_{f.name.upper()}"
            if key in environ and environ[key] != "":
                values[f.name] = environ[key]
        settings = cls()
        for f in fields(cls):
            if f.name not in values or f.name == "extra":
                continue
            raw = values[f.name]
            default = getattr(settings, f.name)
            if isinstance(default, bool):
                value: object = raw if isinstance(raw, bool) else _bool(str(raw))
            elif isinstance(default, Path):
                value = Path(str(raw))
            elif isinstance(default, int):
                value = int(raw)  # type: ignore[arg-type]
            elif isinstance(default, float):
                value = float(raw)  # type: ignore[arg-type]
            else:
                value = raw
            setattr(settings, f.name, value)
        return settings

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def meta_dir(self) -> Path:
        return self.data_dir / "meta"

    @property
    def nats_dir(self) -> Path:
        return self.data_dir / "nats"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def logs_dir(self) -> Path:
        """The embedded Postgres' and NATS' own logs (postgres.log, nats.log)."""
        return self.data_dir / "logs"


def describe() -> str:
    lines = ["environment variables (or keys of the TOML file named by CYP_CONFIG):"]
    defaults = Settings()
    for name, text in HELP.items():
        lines.append(f"  CYP_{name.upper():<16} {text} (default: {getattr(defaults, name)})")
    return "\n".join(lines)
