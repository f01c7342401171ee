"""How the registry logs: every process (each `--workers` child too) writes one line per record
to stderr, as text or as JSON (`CYP_LOG_FORMAT`), uvicorn's own lines included; the access log
(`api.access_log`) is one of those records per request. The embedded Postgres and NATS write
their chatter to files under `<data>/logs/` instead (`cyp_registry.embedded`).

The first start's generated admin password is no log record: it is framed on stderr, once,
so that nobody misses it and no log file or shipper keeps it."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the fields
    a record carries in `fields` (the access log's client, user, status, ...)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def check_format(value: str) -> str:
    value = value.strip().lower()
    if value not in FORMATS:
        raise SystemExit(f"CYP_LOG_FORMAT: {value!r} is neither text nor json")
    return value


def config(level: str, fmt: str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of every process; uvicorn gets it as its `log_config`
    so that the API processes it spawns (`--workers N`) apply it as well."""
    formatter = JsonFormatter if check_format(fmt) == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["console"]},
        "loggers": {
            # uvicorn's lines in our format; its access log is replaced by ours
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure(level: str, fmt: str) -> None:
    import logging.config

    logging.config.dictConfig(config(level, fmt))


def announce_password(user: str, password: str, stream: TextIO | None = None) -> None:
    """A generated password, framed on stderr so it stands out among the start-up lines."""
    lines = [
        f"created user {user} with password {password}",
        "(shown only this once: sign in with it, then change it, e.g.",
        f" cyp-registry user passwd {user} --password-stdin)",
    ]
    width = max(len(line) for line in lines) + 4
    rule = "=" * width
    text = "\n".join([rule, *(f"  {line}" for line in lines), rule])
    out = stream or sys.stderr
    out.write(f"\n{text}\n\n")
    out.flush()
