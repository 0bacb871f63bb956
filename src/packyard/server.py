"""Starting a server: migrations, bootstrap, TLS and uvicorn."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from packyard.api.app import create_app
from packyard.config import Advertised, database_url, save_advertised
from packyard.services.bootstrap import ensure_bootstrapped, startup_lock
from packyard.services.container import Services
from packyard.store.engine import Store
from packyard.store.migrate import upgrade
from packyard.tls import ensure_self_signed


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
    logging.basicConfig(
        level=options.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        create_app(services),
        host=options.host,
        port=options.port,
        ssl_certfile=str(ssl_cert) if ssl_cert else None,
        ssl_keyfile=str(ssl_key) if ssl_key else None,
        log_level=options.log_level,
        access_log=False,
        timeout_keep_alive=120,
        server_header=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
