"""Starting a server: migrations, bootstrap, TLS and the HTTP server (granian)."""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.log import LogLevels
from granian.server import Server

from packyard.api.app import create_app
from packyard.config import Advertised, database_url, save_advertised
from packyard.errors import ApiError, Code
from packyard.services.bootstrap import ensure_bootstrapped, startup_lock
from packyard.services.container import Services
from packyard.store.engine import Store
from packyard.store.migrate import upgrade
from packyard.tls import ensure_self_signed

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
# granian's own messages (start, workers, shutdown) go to standard error like ours:
# standard output carries the HCP_* block of the first start only.
GRANIAN_LOGGING: dict[str, Any] = {
    "formatters": {
        "packyard": {"()": "logging.Formatter", "fmt": "%(levelname)s granian: %(message)s"}
    },
    "handlers": {
        "stderr": {
            "formatter": "packyard",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "_granian": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "granian.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


@dataclass(frozen=True, slots=True)
class ServeOptions:
    data_dir: Path
    host: str
    port: int
    database_url: str | None
    tls_cert: Path | None
    tls_key: Path | None
    no_tls: bool
    public_address: str | None
    log_level: str = "info"
    workers: int = 1


def prepare(data_dir: Path, db_url: str | None) -> tuple[Services, bool]:
    """Open the database, migrate it and bootstrap it. Returns (services, first_start)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(database_url(data_dir, db_url))
    services = Services.create(store)
    with startup_lock(store, data_dir):
        upgrade(store)
        _, created = ensure_bootstrapped(services, data_dir)
    services.auth.signing_key()
    return services, created


# How `packyard serve` tells its worker processes what to open.
WORKER_SPEC_ENV = "PACKYARD_SERVE_WORKER"
# Seconds a worker gets to finish its requests at shutdown before it is killed.
SHUTDOWN_GRACE_S = 30


def worker_app() -> FastAPI:
    """The app of one worker process of ``packyard serve`` (the server's app factory).

    The parent has migrated and bootstrapped the database already; each worker
    opens its own connections, caches and background scheduler (scheduled
    rollbacks are claimed with row locks, so each is applied once).
    """
    spec = json.loads(os.environ[WORKER_SPEC_ENV])
    _exit_with(spec["supervisor_pid"])
    logging.basicConfig(level=spec["log_level"].upper(), format=LOG_FORMAT)
    store = Store(database_url(Path(spec["data_dir"]), spec["database_url"]))
    services = Services.create(store)
    services.auth.signing_key()
    return create_app(services)


def _exit_with(supervisor_pid: int) -> None:
    """Have the kernel send this worker SIGTERM when its supervisor dies (Linux).

    A supervisor killed outright (``kill -9``, the OOM killer) cannot stop its
    workers; left alone they would keep serving the port as orphans. SIGTERM makes
    a worker finish its requests and exit, as at a normal shutdown.
    """
    if sys.platform != "linux":
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != supervisor_pid:  # it died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def ensure_port_free(host: str, port: int) -> None:
    """Refuse to start on an address another server already listens on.

    granian binds with ``SO_REUSEPORT`` (its workers share the port), which would let a
    second server on the same port take half of the first one's connections. A plain
    bind fails while anyone listens there, so it is tried first.
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ApiError(Code.INVALID_ARGUMENT, f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # old connections are fine
        try:
            probe.bind(address)
        except OSError as exc:
            raise ApiError(
                Code.FAILED_PRECONDITION,
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(is another server running there?)",
            ) from None


def advertised_address(host: str, port: int, public: str | None) -> str:
    if public:
        return public
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"{shown}:{port}"


def run(options: ServeOptions, services: Services) -> None:
    ssl_cert: Path | None = None
    ssl_key: Path | None = None
    self_signed = False
    if not options.no_tls:
        if options.tls_cert and options.tls_key:
            ssl_cert, ssl_key = options.tls_cert, options.tls_key
        else:
            ssl_cert, ssl_key = ensure_self_signed(options.data_dir / "tls", [options.host])
            self_signed = True
    save_advertised(
        options.data_dir,
        Advertised(
            address=advertised_address(options.host, options.port, options.public_address),
            tls=not options.no_tls,
            self_signed=self_signed,
            database_url=options.database_url,
        ),
    )
    logging.basicConfig(level=options.log_level.upper(), format=LOG_FORMAT)
    services.store.dispose()  # each worker opens its own connections after the fork
    os.environ[WORKER_SPEC_ENV] = json.dumps(
        {
            "data_dir": str(options.data_dir),
            "database_url": options.database_url,
            "log_level": options.log_level,
            "supervisor_pid": os.getpid(),
        }
    )
    server = Server(
        "packyard.server:worker_app",
        factory=True,
        address=options.host,
        port=options.port,
        interface=Interfaces.ASGI,
        workers=options.workers,
        # HTTP/1.1 only, as stock clients speak it; no WebSockets to offer.
        http=HTTPModes.http1,
        websockets=False,
        ssl_cert=ssl_cert,
        ssl_key=ssl_key,
        ssl_protocol_min=SSLProtocols.tls12,
        log_level=LogLevels(options.log_level),
        log_dictconfig=GRANIAN_LOGGING,
        log_access=False,  # access logs would carry client addresses and paths; see SECURITY.md
        respawn_failed_workers=True,
        workers_kill_timeout=SHUTDOWN_GRACE_S,
    )
    # Workers are forked from this process: objects that exist now are never
    # collected, so the memory pages holding them stay shared with every worker.
    gc.collect()
    gc.freeze()
    server.serve()
