"""How a server logs: every line stamped with the time in ISO 8601 UTC, as text or JSON.

``text``: ``2026-12-05T12:56:09.123Z INFO packyard.x: message``.
``json``: one object per line, ``{"ts", "level", "logger", "message"}`` plus the request
fields of an access-log line (``method``, ``path``, ``operation``, ``status``,
``duration_ms``, ``bytes``) and ``exception`` when one is logged.

The same formatters serve Packyard's loggers and granian's (given to granian as its
``log_dictconfig``). Everything goes to standard error: standard output carries only the
``HCP_*`` block of a first start.
"""

from __future__ import annotations

import logging
import sys
import time
from enum import StrEnum
from typing import Any

import orjson

# Fields an access-log record carries (packyard.api.metrics), in this order in JSON.
REQUEST_FIELDS = ("method", "path", "operation", "status", "duration_ms", "bytes")


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def _timestamp(created: float) -> str:
    whole = int(created)
    millis = int((created - whole) * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{millis:03d}Z"


class TextFormatter(logging.Formatter):
    """``<ISO 8601 UTC> LEVEL logger: message`` (continuation lines of a traceback follow)."""

    def __init__(self, prefix: str | None = None) -> None:
        super().__init__()
        self.prefix = prefix  # shown instead of the logger's name (granian's loggers)

    def format(self, record: logging.LogRecord) -> str:
        name = self.prefix or record.name
        line = f"{_timestamp(record.created)} {record.levelname} {name}: {record.getMessage()}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def __init__(self, prefix: str | None = None) -> None:
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": self.prefix or record.name,
            "message": record.getMessage(),
        }
        for key in REQUEST_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def formatter(fmt: LogFormat | str, prefix: str | None = None) -> logging.Formatter:
    if LogFormat(fmt) is LogFormat.json:
        return JsonFormatter(prefix)
    return TextFormatter(prefix)


def configure(level: str, fmt: LogFormat | str = LogFormat.text) -> None:
    """Send Packyard's (and every other library's) log records to standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request at INFO with its whole URL; outbound URLs (webhooks, audit
    # collectors, run-task callbacks) may carry secrets in their path or query.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))


def granian_config(fmt: LogFormat | str) -> dict[str, Any]:
    """granian's ``log_dictconfig``: its messages (start, workers, shutdown) on standard
    error in the same format as Packyard's, logger ``granian``. Its own access log stays
    off: Packyard's (``--access-log``) has the route and the response size."""
    factory = f"{__name__}.formatter"
    return {
        "formatters": {
            "packyard": {"()": factory, "fmt": str(LogFormat(fmt)), "prefix": "granian"}
        },
        "filters": {"known_caveats": {"()": f"{__name__}.KnownCaveats"}},
        "handlers": {
            "stderr": {
                "formatter": "packyard",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "_granian": {
                "handlers": ["stderr"],
                "filters": ["known_caveats"],
                "level": "INFO",
                "propagate": False,
            },
            "granian.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }


class KnownCaveats(logging.Filter):
    """Drops granian's warning that its embedded server (how a single-worker ``serve``
    runs, :mod:`packyard.server`) is experimental: chosen knowingly and covered by
    Packyard's tests, it would otherwise greet every operator at every start."""

    CAVEATS = frozenset({"Embedded server is experimental!"})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.CAVEATS


def serve_line(message: str, fmt: LogFormat | str, level: str = "INFO") -> str:
    """A start-up line of ``packyard serve`` as it appears on standard error: as it was in
    text format, as a log object in JSON format (so that every line there parses)."""
    if LogFormat(fmt) is LogFormat.text:
        return message
    record = logging.LogRecord(
        "packyard.serve", logging.getLevelName(level), "", 0, message, None, None
    )
    return JsonFormatter().format(record)
