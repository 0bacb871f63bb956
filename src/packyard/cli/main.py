"""``packyard``: run the server and administer it."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from packyard import __version__
from packyard.cli.admin import register as register_admin_commands
from packyard.cli.commands import register as register_client_commands
from packyard.cli.common import fail, stderr
from packyard.cli.database import DatabaseUrl, DataDir, server_database
from packyard.cli.envblock import as_shell, env_block
from packyard.config import (
    DEFAULT_PORT,
    Advertised,
    default_data_dir,
    load_advertised,
    read_database_url_file,
)
from packyard.errors import ApiError
from packyard.server import (
    WILDCARDS,
    ServeOptions,
    advertised_address,
    check_public_address,
    clients_use_tls,
    ensure_port_free,
    prepare,
    run,
)
from packyard.services.bootstrap import load_credentials
from packyard.services.container import Services
from packyard.startup import StartupError

app = typer.Typer(
    name="packyard",
    help="Packyard: a self-hosted registry for Packer image metadata (HCP Packer compatible).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = stderr()


def _print_version(value: bool) -> None:
    if value:
        print(f"packyard {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Packyard: a self-hosted registry for Packer image metadata (HCP Packer compatible)."""


class Format(StrEnum):
    shell = "shell"
    json = "json"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API and token endpoint.")] = DEFAULT_PORT,
    database_url: DatabaseUrl = None,
    database_url_file: Annotated[
        Path | None,
        typer.Option(
            "--database-url-file",
            help="Read the database URL from this file (mode 0600) instead.",
            envvar="PACKYARD_DATABASE_URL_FILE",
            show_envvar=True,
        ),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate to serve.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key to serve.")] = None,
    no_tls: Annotated[
        bool, typer.Option("--no-tls", help="Plain HTTP, for use behind a TLS-terminating proxy.")
    ] = False,
    public_address: Annotated[
        str | None,
        typer.Option(help="host:port clients use to reach this server (e.g. the proxy)."),
    ] = None,
    log_level: Annotated[LogLevel, typer.Option(help="How much the server logs.")] = LogLevel.info,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port (about one per core; each has its own caches).",
        ),
    ] = 1,
) -> None:
    """Run the registry: the HCP Packer API and the OAuth2 token endpoint on one port."""
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together.", 2)
    if no_tls and tls_cert:
        fail("--no-tls cannot be combined with --tls-cert/--tls-key.", 2)
    if public_address is not None:
        try:
            check_public_address(public_address)
        except ValueError as exc:
            fail(str(exc), 2)
    if database_url_file is not None:
        if database_url:
            fail("give the database URL once: --database-url or --database-url-file.", 2)
        try:
            database_url = read_database_url_file(database_url_file)
        except StartupError as exc:
            fail(exc.message, 2)
    directory = data_dir or default_data_dir()
    try:
        ensure_port_free(host, port)
        services, first = prepare(directory, database_url)
    except (ApiError, StartupError) as exc:
        fail(exc.message)
        return
    options = ServeOptions(
        data_dir=directory,
        host=host,
        port=port,
        database_url=database_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
        no_tls=no_tls,
        public_address=public_address,
        log_level=log_level.value,
        workers=workers,
        database_url_file=database_url_file,
    )
    creds = load_credentials(directory)
    address = advertised_address(host, port, public_address)
    tls = clients_use_tls(no_tls, public_address)
    scheme = "https" if tls else "http"
    err.print(
        f"Packyard {__version__} serving on {scheme}://{address} (data: {directory})",
        highlight=False,
    )
    if creds is not None and first:
        # The admin secret is shown once, at creation; `packyard env` prints it again.
        advertised = Advertised(
            address=address, tls=tls, self_signed=not no_tls and tls_cert is None
        )
        err.print("First start: created the default organization and project. For stock clients:")
        print(as_shell(env_block(advertised, creds)), flush=True)
    else:
        err.print("Run `packyard env` for the HCP_* variables stock clients need.")
    _first_console_admin(services, f"{scheme}://{address}/")
    if no_tls and public_address is None:
        err.print(
            "[yellow]note:[/yellow] the HCP SDK requires an https auth URL; put a TLS proxy in "
            "front and pass --public-address.",
            highlight=False,
        )
    elif host in WILDCARDS and public_address is None:
        err.print(
            f"[yellow]note:[/yellow] listening on every address, Packyard names {address} in "
            "`packyard env` and in the links it hands out; pass --public-address with the "
            "address clients use.",
            highlight=False,
        )
    try:
        run(options, services)
    except StartupError as exc:
        fail(exc.message)


def _first_console_admin(services: Services, console_url: str) -> None:
    """Create the console's first admin (nothing once any user exists) and show its
    password: only now, as only an argon2id hash is kept."""
    tenant = services.tenancy.default_tenant()
    if tenant is None:
        return
    made = services.users.create_first_admin(tenant.organization.id, tenant.project.id)
    if made is None:
        return
    email = made.record.user.email
    err.print(
        f"Console: open {console_url} and sign in as {email} with the password below "
        "(shown only now; change it under Account, or make a new one with "
        "`packyard user reset-password`)."
    )
    print(f"PACKYARD_CONSOLE_USER={email}", flush=True)
    print(f"PACKYARD_CONSOLE_PASSWORD={made.password}", flush=True)


@app.command()
def env(
    data_dir: DataDir = None,
    format: Annotated[Format, typer.Option("--format", help="shell or json.")] = Format.shell,
) -> None:
    """Print the HCP_* environment stock Packer and Terraform need for this server."""
    directory = data_dir or default_data_dir()
    creds = load_credentials(directory)
    advertised = load_advertised(directory)
    if creds is None or advertised is None:
        fail(f"no server has been started with data directory {directory}; run packyard serve.")
        return
    block = env_block(advertised, creds)
    if format is Format.json:
        print(orjson.dumps(block, option=orjson.OPT_INDENT_2).decode())
    else:
        print(as_shell(block))


@app.command()
def check(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: Annotated[OutputFormat, typer.Option("--format", help="table or json.")] = (
        OutputFormat.table
    ),
) -> None:
    """Verify the registry's invariants; print one line per violation, exit 1 if any."""
    from sqlalchemy.exc import SQLAlchemyError

    from packyard.config import DB_FILE, scrub
    from packyard.config import database_url as resolve_url
    from packyard.services.check import check_store
    from packyard.store.engine import Store

    directory, db_url = server_database(data_dir, database_url)
    if db_url is None and not (directory / DB_FILE).exists():
        fail(f"no database in {directory}; pass --data-dir or --database-url.", 2)
    url = resolve_url(directory, db_url)
    try:
        store = Store(url, pool_size=1)
        try:
            report = check_store(store)
        finally:
            store.dispose()
    except (SQLAlchemyError, ValueError) as exc:
        message = scrub(str(exc).splitlines()[0][:300], url)
        fail(f"cannot read the database: {message}", 2)
    if format is OutputFormat.json:
        payload = {
            "ok": report.ok,
            "checked": {
                "buckets": report.buckets,
                "versions": report.versions,
                "builds": report.builds,
                "channels": report.channels,
            },
            "violations": [v.as_dict() for v in report.violations],
        }
        print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
    else:
        for violation in report.violations:
            print(violation)
        summary = (
            f"checked {report.buckets} buckets, {report.versions} versions, {report.builds} "
            f"builds, {report.channels} channels: {len(report.violations)} violations"
        )
        err.print(summary, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


register_client_commands(app)  # buckets, versions, …, plan check, ingest-manifest
register_admin_commands(app)  # principal, key, org, project


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
