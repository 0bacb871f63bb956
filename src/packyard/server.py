"""Starting a server: migrations, bootstrap, TLS and the HTTP server (granian)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import gc
import importlib
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import uvloop
from fastapi import FastAPI
from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.errors import FatalError
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server
from pydantic import TypeAdapter
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, ProgrammingError, SQLAlchemyError

from packyard import heap, logs
from packyard.api.metrics import ACCESS_LOGGER
from packyard.config import (
    CREDENTIALS_FILE,
    SERVER_FILE,
    Advertised,
    database_url,
    env_number,
    read_database_url_file,
    redact_url,
    save_advertised,
    scrub,
    url_passwords,
)
from packyard.errors import ApiError, Code
from packyard.files import (
    create_private_file,
    ensure_private_dir,
    restrict_umask,
    tighten_with_notice,
)
from packyard.metrics import multiprocess_dir
from packyard.services.secrets import KEY_FILE, check_secret_key, load_sealer
from packyard.startup import StartupError, notice
from packyard.store.engine import Store
from packyard.tls import ensure_certificate

if TYPE_CHECKING:
    from packyard.services.container import Services

# httpx imports its own command-line client whenever click is installed (Typer installs
# it): rich's syntax highlighting and pygments' lexers, about 5 MB resident in the
# server, whose worker processes share its pages, for a program Packyard never runs. A
# None entry makes that import fail, which httpx handles (``httpx.main`` then says it
# cannot run). The modules that bring httpx in are therefore imported inside the
# functions below, after this line has run.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


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
    # Where ``database_url`` was read from (--database-url-file): workers read it there.
    database_url_file: Path | None = None
    log_format: str = "text"
    access_log: bool = False
    # Bearer token /metrics asks for; without one it answers loopback clients only.
    metrics_token: str | None = None


# Seconds a client has to send a request's headers (also how long an idle keep-alive
# connection stays open). granian's TLS handshake has its own limit of 10 s.
HEADER_TIMEOUT_S = env_number("PACKYARD_HEADER_TIMEOUT_S", 30, minimum=0.1)
_STARTUP_LOCK = ".startup.lock"


def prepare(data_dir: Path, db_url: str | None, *, check_key: bool = True) -> tuple[Services, bool]:
    """Open the database, migrate it and bootstrap it. Returns (services, first_start).

    The data directory is made private and every file created in it is created 0600
    (:mod:`packyard.files`), whatever the process's umask. A data directory that
    cannot be used or a database that cannot be reached raises :class:`StartupError`:
    one line for the operator, without the database password. ``check_key=False`` skips
    the secret-key check (:func:`check_secret_key`), for the command that resets what it
    guards.
    """
    from packyard.services.bootstrap import ensure_bootstrapped, startup_lock
    from packyard.services.container import Services

    url = database_url(data_dir, db_url)
    check_database_scheme(url)
    # A database server is reached before the data directory is touched, so that a wrong
    # URL leaves no new directory or key behind; a SQLite database lives in that directory.
    store = None if _on_sqlite(url) else _reached(_store(url), url)
    try:
        try:
            ensure_private_dir(data_dir)
            create_private_file(data_dir / _STARTUP_LOCK)
            tighten_with_notice(*_private_files(data_dir, url))
        except OSError as exc:
            raise data_dir_error(data_dir, exc) from None
        sealer = load_sealer(data_dir)
        store = store or _store(url)
    except StartupError:
        if store is not None:
            store.dispose()
        raise
    services = Services.create(store, sealer)
    try:
        with startup_lock(store, data_dir):
            migrate_in_child(url, data_dir)
            _, created = ensure_bootstrapped(services, data_dir)
            if check_key:
                check_secret_key(store, sealer)
        services.auth.signing_key()
    except StartupError:
        store.dispose()
        raise
    except OSError as exc:
        store.dispose()
        raise data_dir_error(data_dir, exc) from None
    except SQLAlchemyError as exc:
        store.dispose()
        raise database_error(store, url, exc) from None
    return services, created


def _store(url: str) -> Store:
    try:
        return Store(url)
    except (ArgumentError, ValueError) as exc:
        raise StartupError(
            f"invalid database URL {redact_url(url)}: {scrub(str(exc), url)}"
        ) from None


def _reached(store: Store, url: str) -> Store:
    """``store`` once one connection to its database has opened (:func:`database_error`
    when none can)."""
    try:
        with store.engine.connect():
            pass
    except SQLAlchemyError as exc:
        store.dispose()
        raise database_error(store, url, exc) from None
    return store


def migrate_in_child(url: str, data_dir: Path) -> None:
    """Bring the database schema to the newest revision, in a short-lived child process.

    Alembic, Mako (which loads pygments) and the migration scripts, about 10 MB resident
    once loaded, then never enter this process, whose pages the server's worker processes
    share: they would be counted in the server's memory for as long as it runs. The
    child opens its own connection and leaves with ``os._exit``, so nothing it inherited
    (the parent's connections, the start-up lock) is closed or released by it. Its
    failure arrives here as the one line :func:`prepare` would have shown.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        message = "database migration did not finish"
        try:
            message = _migrate(url, data_dir)
        finally:
            with contextlib.suppress(OSError):
                os.write(write_end, message.encode()[:4000])
            os._exit(1 if message else 0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        message = reader.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise StartupError(message or "database migration failed")


def _migrate(url: str, data_dir: Path) -> str:
    """Migrate with a Store of this process's own; the failure as one line, or ""."""
    from packyard.store.migrate import upgrade

    store = Store(url)
    try:
        upgrade(store)
    except StartupError as exc:
        return exc.message
    except OSError as exc:
        return data_dir_error(data_dir, exc).message
    except SQLAlchemyError as exc:
        return database_error(store, url, exc).message
    except Exception as exc:  # a bug must still end in one line, never a traceback
        return f"database migration failed: {type(exc).__name__}: {scrub(str(exc), url)}"
    finally:
        store.dispose()
    return ""


SUPPORTED_SCHEMES = ("postgresql", "postgres", "sqlite")


def _scheme(url: str) -> str:
    """The URL's scheme as written (``postgresql+psycopg``), ``""`` without one."""
    return url.split("://", 1)[0] if "://" in url else ""


def _on_sqlite(url: str) -> bool:
    return _scheme(url).split("+", 1)[0].lower() == "sqlite"


def check_database_scheme(url: str) -> None:
    """Refuse a database URL of a kind Packyard cannot use, before anything is opened."""
    scheme = _scheme(url)
    if scheme.split("+", 1)[0].lower() not in SUPPORTED_SCHEMES:
        shown = scheme or redact_url(url)
        raise StartupError(
            f"unsupported database URL scheme {shown!r}: use postgresql://user@host/db, "
            "or no --database-url for SQLite in the data directory"
        )


def check_certificate(cert: Path, key: Path) -> None:
    """Refuse a TLS certificate or key that cannot be read or does not fit together, with
    the reason, before anything is started (granian would fail in its workers)."""
    import ssl

    for what, path in (("certificate", cert), ("key", key)):
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise StartupError(
                f"cannot read the TLS {what} {path}: {exc.strerror or exc}; pass a PEM file "
                "this user can read"
            ) from None
    try:
        # A password callback: an encrypted key fails here instead of prompting on a terminal.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            cert, key, password=lambda: b""
        )
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise StartupError(
            f"cannot use the TLS certificate {cert} with the key {key} ({reason}): pass a "
            "PEM certificate and its unencrypted PEM private key"
        ) from None


def _private_files(data_dir: Path, url: str) -> list[Path]:
    """Files of the data directory that older versions created accessible to others."""
    files = [
        data_dir / CREDENTIALS_FILE,
        data_dir / SERVER_FILE,
        data_dir / _STARTUP_LOCK,
        data_dir / KEY_FILE,
    ]
    try:
        parsed = make_url(url)
    except ArgumentError:
        return files  # reported when the database is opened
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db = Path(parsed.database)
        files += [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-writers.lock"))]
    return files


def data_dir_error(data_dir: Path, exc: OSError) -> StartupError:
    """One line naming the data directory and what the system refused."""
    reason = exc.strerror or str(exc)
    if exc.filename and Path(exc.filename) != data_dir:
        reason = f"{reason}: {exc.filename}"
    refused = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC)
    todo = (
        "make it writable by this user or pass another --data-dir"
        if refused
        else "pass --data-dir with a directory (it is created if missing)"
    )
    return StartupError(
        f"cannot {'write to' if refused else 'use'} data directory {data_dir}: {reason}; {todo}"
    )


def database_error(store: Store, url: str, exc: SQLAlchemyError) -> StartupError:
    """One line naming the database (its password masked) and the driver's reason."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    reason = scrub(lines[0] if lines else type(orig).__name__, url)[:300]
    if store.is_sqlite:
        where = make_url(url).database or url
        todo = (
            "it is not a Packyard database: move it away, or restore a backup with "
            "`packyard restore`"
            if "not a database" in reason or "malformed" in reason
            else "check the file and its directory"
        )
        return StartupError(f"cannot open the database {where}: {reason}; {todo}")
    hint = ""
    if not url_passwords(url) and "password" in reason.lower():
        hint = (
            " (database passwords are not stored in the data directory: set "
            "PACKYARD_DATABASE_URL or pass --database-url-file)"
        )
    elif "password" in reason.lower() or "authentication" in reason.lower():
        hint = "; check the user and password of the database URL"
    elif not isinstance(exc, ProgrammingError):
        hint = "; check the host and port of the database URL and that PostgreSQL is running"
    return StartupError(f"cannot connect to the database at {redact_url(url)}: {reason}{hint}")


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
    _configure_logging(spec["log_level"], spec.get("log_format", "text"), spec.get("access_log"))
    url = spec["database_url"]
    if spec.get("database_url_file"):
        url = read_database_url_file(Path(spec["database_url_file"]))
    return _app(Path(spec["data_dir"]), url, spec)


def _app(data_dir: Path, db_url: str | None, spec: dict[str, Any]) -> FastAPI:
    """The app serving the database at ``db_url`` with the settings of ``spec`` (see
    :func:`_worker_spec`). Raises :class:`StartupError` when the database cannot be used."""
    from packyard.api.app import create_app
    from packyard.services.container import Services

    heap.bound_heap_ends()
    url = database_url(data_dir, db_url)
    store = Store(url)
    try:
        store.ping()
    except SQLAlchemyError as exc:
        store.dispose()
        raise database_error(store, url, exc) from None
    services = Services.create(store, load_sealer(data_dir))
    services.auth.signing_key()
    advertised = spec.get("advertised")
    return create_app(
        services,
        public_url=spec.get("public_url"),
        advertised=Advertised(**advertised) if advertised else None,
        metrics_token=spec.get("metrics_token"),
        access_log=bool(spec.get("access_log")),
    )


def _configure_logging(level: str, fmt: str, access_log: bool | None) -> None:
    logs.configure(level, fmt)
    if access_log:  # one line per request whatever --log-level says
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)


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


WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104


def advertised_address(host: str, port: int, public: str | None) -> str:
    if public:
        return public
    shown = "127.0.0.1" if host in WILDCARDS else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"{shown}:{port}"


def check_public_address(value: str) -> str:
    """``value`` if it is ``host[:port]`` (an IPv6 address in brackets); ``ValueError`` if not."""
    parts = urlsplit("//" + value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname or ""
    bracketed = parts.netloc.startswith("[")
    valid_host = (
        _is_ip(host) if bracketed else bool(re.fullmatch(r"[A-Za-z0-9._-]+", host))
    ) and not (bracketed and ":" not in host)
    if (
        parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or port == -1
        or parts.netloc.endswith(":")
        or not valid_host
    ):
        raise ValueError(
            f"--public-address must be host or host:port (IPv6 in brackets), not {value!r}"
        )
    return value


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def clients_use_tls(no_tls: bool, public_address: str | None) -> bool:
    """Whether clients reach the server over TLS: it serves TLS itself, or a TLS-terminating
    proxy at ``--public-address`` does in front of ``--no-tls`` (the documented proxy set-up,
    and the only one stock clients can use: the HCP SDK refuses an http auth URL)."""
    return not no_tls or public_address is not None


def public_url(options: ServeOptions) -> str:
    """The base of the absolute links the API hands out (SBOM downloads, redirects): the
    address ``packyard env`` gives clients (``--public-address``, else the address the
    server listens on), never the request's ``Host`` header."""
    scheme = "https" if clients_use_tls(options.no_tls, options.public_address) else "http"
    return f"{scheme}://{advertised_address(options.host, options.port, options.public_address)}"


def _certificate(options: ServeOptions) -> tuple[Path | None, Path | None, bool]:
    """(cert, key, self_signed) to serve; the self-signed one is renewed when due."""
    if options.no_tls:
        return None, None, False
    if options.tls_cert and options.tls_key:
        return options.tls_cert, options.tls_key, False
    hosts = [options.host]
    if options.public_address:
        hosts.append(urlsplit("//" + options.public_address).hostname or "")
    found = ensure_certificate(options.data_dir / "tls", hosts)
    if found.generated is not None and found.generated != "created":
        notice(
            f"renewed the self-signed TLS certificate {found.cert} ({found.generated}); "
            "clients that verify it must be given the new one"
        )
    return found.cert, found.key, True


def ready(options: ServeOptions) -> Handover:
    """Everything serving needs that can still fail, done before ``packyard serve`` prints
    its banner (and a first admin's password): the certificate, settings that fit the
    hand-over, and the record of how clients reach this server. Raises StartupError."""
    restrict_umask()  # the serving process and its workers inherit it
    try:
        ssl_cert, ssl_key, self_signed = _certificate(options)
        handover = Handover(options, ssl_cert, ssl_key, self_signed)
        handover.payload()
        save_advertised(
            options.data_dir,
            Advertised(
                address=advertised_address(options.host, options.port, options.public_address),
                tls=clients_use_tls(options.no_tls, options.public_address),
                self_signed=self_signed,
                database_url=options.database_url,
                database_url_file=(
                    str(options.database_url_file.resolve()) if options.database_url_file else None
                ),
                started_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                pid=os.getpid(),
            ),
        )
    except OSError as exc:
        raise data_dir_error(options.data_dir, exc) from None
    return handover


def run(handover: Handover, services: Services) -> NoReturn:
    """Serve with the database ``prepare`` readied and the hand-over :func:`ready`: close
    this process's connections, then become the serving process (:func:`hand_over`)."""
    services.store.dispose()
    hand_over(handover)


@dataclass(frozen=True, slots=True)
class Handover:
    """What the serving process is told by ``packyard serve`` (:func:`hand_over`)."""

    options: ServeOptions
    ssl_cert: Path | None
    ssl_key: Path | None
    self_signed: bool

    def to_json(self) -> bytes:
        return _HANDOVER.dump_json(self)

    def payload(self) -> bytes:
        """The JSON written to the pipe; StartupError when it would not fit in one."""
        payload = self.to_json()
        if len(payload) > HANDOVER_MAX_BYTES:
            raise StartupError(
                f"the server's settings take more than {HANDOVER_MAX_BYTES // 1024} KiB "
                "(a metrics token or a database URL that long?)"
            )
        return payload

    @classmethod
    def from_json(cls, raw: bytes) -> Handover:
        return _HANDOVER.validate_json(raw)


_HANDOVER: TypeAdapter[Handover] = TypeAdapter(Handover)
SERVING_MODULE = "packyard.serving"
# A handover is written whole before the serving process reads it: it must fit in a pipe
# (64 KiB on Linux, 16 KiB at least on other systems), or the write would wait forever.
HANDOVER_MAX_BYTES = 16 * 1024


def hand_over(handover: Handover) -> NoReturn:
    """Become the serving process: this process (same pid, same standard streams) executes
    a fresh interpreter running :mod:`packyard.serving`, which imports the server and none
    of the command line (Typer, rich and the CLI's own modules: 7 MB resident that a server
    never uses). The handover goes through a pipe whose read end the new program inherits,
    so the database URL and the metrics token are on no command line and in no environment."""
    payload = handover.payload()
    read_end, write_end = os.pipe()
    os.write(write_end, payload)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, serving_command(read_end))  # noqa: S606
    except OSError as exc:
        os.close(read_end)
        raise StartupError(
            f"cannot start the serving process with {sys.executable or 'no interpreter'}: "
            f"{exc.strerror or exc}"
        ) from None


def serving_command(handover_fd: int) -> list[str]:
    """The serving process's command line: the interpreter running this one, the module
    and the pipe's read end. ``-P``: the working directory is not put on its import path.
    ``-X no_debug_ranges``: its code objects carry no column positions (0.5 MB resident;
    a traceback in the log still names every file and line, without the carets). ``-OO``:
    no docstrings and no ``assert`` statements in any module it loads (4.3 MB resident);
    the API's document takes its descriptions from explicit ones (``api.wire.described``).
    It loads the ``.opt-2.pyc`` bytecode ``./dev`` and the container image compile at
    install; without it, it compiles every module at each start (2 s more, 2 MB more)
    unless it may write the files, as in a virtual environment its user owns."""
    return [
        sys.executable,
        "-P",
        "-X",
        "no_debug_ranges",
        "-OO",
        "-m",
        SERVING_MODULE,
        str(handover_fd),
    ]


def serve(handover: Handover) -> None:
    """Serve as ``handover`` says, in the serving process: this process with one worker,
    granian's supervisor forking them with more. Raises :class:`StartupError` when the
    database or the data directory fails at this point."""
    options = handover.options
    _configure_logging(options.log_level, options.log_format, options.access_log)
    spec = _worker_spec(options, handover.self_signed)
    http = _http_settings(options, handover.ssl_cert, handover.ssl_key)
    if options.workers == 1:
        _serve_in_process(_app(options.data_dir, options.database_url, spec), http)
    else:
        _serve_with_workers(options.workers, spec, http)


def _worker_spec(options: ServeOptions, self_signed: bool) -> dict[str, Any]:
    """What a worker needs to build its app (:func:`worker_app`, :func:`_app`)."""
    return {
        "data_dir": str(options.data_dir),
        "database_url": None if options.database_url_file else options.database_url,
        "database_url_file": (
            str(options.database_url_file.resolve()) if options.database_url_file else None
        ),
        "public_url": public_url(options),
        "advertised": {
            "address": advertised_address(options.host, options.port, options.public_address),
            "tls": clients_use_tls(options.no_tls, options.public_address),
            "self_signed": self_signed,
        },
        "log_level": options.log_level,
        "log_format": options.log_format,
        "access_log": options.access_log,
        "metrics_token": options.metrics_token,
        "supervisor_pid": os.getpid(),
    }


def _http_settings(
    options: ServeOptions, ssl_cert: Path | None, ssl_key: Path | None
) -> dict[str, Any]:
    """granian's settings, the same for its embedded server and its supervisor."""
    return {
        "address": options.host,
        "port": options.port,
        "interface": Interfaces.ASGI,
        # HTTP/1.1 only, as stock clients speak it; no WebSockets to offer.
        "http": HTTPModes.http1,
        "websockets": False,
        # A client that does not send its headers in time is disconnected (slow clients,
        # half-open connections); the same limit closes idle keep-alive connections.
        # Request bodies have their own limit in the app (packyard.api.middleware).
        "http1_settings": HTTP1Settings(
            header_read_timeout=int(HEADER_TIMEOUT_S * 1000), keep_alive=True
        ),
        "ssl_cert": ssl_cert,
        "ssl_key": ssl_key,
        "ssl_protocol_min": SSLProtocols.tls12,
        "log_level": LogLevels(options.log_level),
        "log_dictconfig": logs.granian_config(options.log_format),
        "log_access": False,  # Packyard's own access log (--access-log) has routes and sizes
    }


def _serve_in_process(app: FastAPI, http: dict[str, Any]) -> None:
    """One worker: this process serves (granian's embedded server on this process's event
    loop), with no supervisor. A supervisor and its forked worker kept 34 MB more resident
    (the worker's copies of the pages reference counting touches); a service manager
    (``deploy/packyard.service``, ``deploy/compose.yaml``) restarts a server that fails."""
    from granian.server.embed import Server as EmbeddedServer

    server = EmbeddedServer(app, **http)
    # Requests still running this long after SIGINT/SIGTERM are stopped (the embedded
    # server's constructor does not take the setting its multi-process one takes).
    server.workers_kill_timeout = SHUTDOWN_GRACE_S
    _freeze_what_exists()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server.stop)
        try:
            await server.serve()
        except FatalError:  # the app's start-up failed (logged by granian)
            pass
        except TimeoutError:
            logging.getLogger("packyard.serve").warning(
                "requests still running %d s after the stop signal were cancelled",
                SHUTDOWN_GRACE_S,
            )

    uvloop.run(serve())
    if server.interrupt_children:  # the app stopped without a stop signal
        raise StartupError("the server stopped unexpectedly; see the log above.")


def _freeze_what_exists() -> None:
    """Keep the objects that exist now (the imported code, the app) out of every later
    garbage collection. A full collection otherwise walks all of them, about 145,000, and
    holds the event loop for about 55 ms: when a single-worker server stopped freezing
    them, the cached artifact search on PostgreSQL at size L went from 6-8 ms at p99 to
    58-65 ms."""
    gc.collect()
    gc.freeze()


def _serve_with_workers(workers: int, spec: dict[str, Any], http: dict[str, Any]) -> None:
    """Several workers: this process becomes granian's supervisor and forks them; each
    builds its app (:func:`worker_app`) from ``spec``, which goes through the environment
    (readable by this user only), never through a command line; with
    --database-url-file they read the URL there."""
    os.environ[WORKER_SPEC_ENV] = json.dumps(spec)
    # Every worker writes its metrics there; a scrape of any worker reads them all.
    metrics_dir = multiprocess_dir()
    server = Server(
        "packyard.server:worker_app",
        factory=True,
        workers=workers,
        respawn_failed_workers=True,
        workers_kill_timeout=SHUTDOWN_GRACE_S,
        **http,
    )
    # Workers are forked from this process: what they run is imported now and frozen, so
    # the memory pages holding it also stay shared with every worker.
    importlib.import_module("packyard.api.app")
    _freeze_what_exists()
    try:
        server.serve()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
