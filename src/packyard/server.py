"""Starting a server: migrations, bootstrap, TLS and uvicorn."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from packyard.api.app import create_app
from packyard.config import Advertised, database_url, save_advertised
from packyard.services.bootstrap import ensure_bootstrapped, startup_lock
from packyard.services.container import Services
from packyard.store.engine import Store
from packyard.store.migrate import upgrade
from packyard.tls import ensure_self_signed

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


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


# How `packyard serve --workers N` tells its worker processes what to open.
WORKER_SPEC_ENV = "PACKYARD_SERVE_WORKER"


def worker_app() -> FastAPI:
    """The app of one worker process of ``packyard serve --workers N`` (a uvicorn factory).

    The parent has migrated and bootstrapped the database already; each worker
    opens its own connections, caches and background scheduler (scheduled
    rollbacks are claimed with row locks, so each is applied once).
    """
    spec = json.loads(os.environ[WORKER_SPEC_ENV])
    logging.basicConfig(level=spec["log_level"].upper(), format=LOG_FORMAT)
    store = Store(database_url(Path(spec["data_dir"]), spec["database_url"]))
    services = Services.create(store)
    services.auth.signing_key()
    return create_app(services)


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
    common: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "ssl_certfile": str(ssl_cert) if ssl_cert else None,
        "ssl_keyfile": str(ssl_key) if ssl_key else None,
        "log_level": options.log_level,
        "access_log": False,
        "timeout_keep_alive": 120,
        "server_header": False,
        "proxy_headers": False,
    }
    if options.workers <= 1:
        uvicorn.Server(uvicorn.Config(create_app(services), **common)).run()
        return
    services.store.dispose()  # the workers open their own connections
    os.environ[WORKER_SPEC_ENV] = json.dumps(
        {
            "data_dir": str(options.data_dir),
            "database_url": options.database_url,
            "log_level": options.log_level,
        }
    )
    config = uvicorn.Config(
        "packyard.server:worker_app",
        factory=True,
        workers=options.workers,
        **common,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
